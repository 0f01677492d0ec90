// `toxlora predict --queue`: the same output as `predict` (rows built and written by the same
// code), scored by the cluster's workers. Restarted with the same arguments it resumes: the rows
// on disk are kept, finished chunks still in Redis are not scored again.
import { readFile, rm, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { writeJsonAtomic } from "../io/atomic.js";
import { DEFAULT_BATCH_SIZE, readRunConfig } from "../predict/classifier.js";
import { type InputFormat, type InputRecord, openResumableJsonlWriter, readInputs } from "../predict/io.js";
import { PREDICT_BLOCK, type PredictFileResult, predictionRows } from "../predict/predict.js";
import { type ClusterProgress, scoreOnQueue } from "./coordinator.js";
import { runFingerprint } from "./fingerprint.js";
import { jobNamespace } from "./jobs.js";
import { checkRedis, type RedisTarget } from "./redis.js";

export interface QueuePredictOptions {
  redis: RedisTarget;
  run: string;
  input: string;
  out: string;
  format?: InputFormat;
  textField?: string;
  idField?: string;
  /** Rows per job (default 2000). */
  chunkSize?: number;
  /** Rows per forward pass on the workers (default 16, as `predict`). */
  batchSize?: number;
  /** Tries per chunk before the run stops (default 3). */
  maxAttempts?: number;
  /** Chunks in Redis at once (default 16). */
  inFlight?: number;
  signal?: AbortSignal;
  onProgress?: (p: ClusterProgress) => void;
  log?: (line: string) => void;
}

/** `<out>.queue.json`: which job the partial output belongs to (no URL, no password). */
export function queueStateFile(out: string): string {
  return `${out}.queue.json`;
}

async function readState(file: string): Promise<{ ns?: string } | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as { ns?: string };
  } catch {
    return undefined;
  }
}

/** Number of input records (for the ETA); undefined for stdin or an unreadable input. */
async function countRecords(path: string, opts: QueuePredictOptions): Promise<number | undefined> {
  if (path === "-") return undefined;
  let n = 0;
  try {
    for await (const _ of readInputs(path, opts)) n++;
  } catch {
    return undefined; // the scoring pass reports the error with its line
  }
  return n;
}

/** Scores `input` into `out` on the queue; the file is byte-identical to `predictFile`'s. */
export async function predictFileOnQueue(opts: QueuePredictOptions): Promise<PredictFileResult> {
  await checkRedis(opts.redis);
  const run = await readRunConfig(opts.run);
  const fingerprint = await runFingerprint(opts.run);
  const chunkSize = opts.chunkSize ?? 2000;
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  const input = opts.input === "-" ? "-" : resolve(opts.input);
  const source = input === "-" ? undefined : await stat(input);
  const ns = jobNamespace({
    kind: "predict",
    run: fingerprint,
    input,
    inputBytes: source?.size,
    inputModified: source?.mtimeMs,
    out: resolve(opts.out),
    format: opts.format,
    textField: opts.textField,
    idField: opts.idField,
    chunkSize,
    batchSize,
    block: PREDICT_BLOCK,
  });
  const stateFile = queueStateFile(opts.out);
  const resume = input !== "-" && (await readState(stateFile))?.ns === ns;
  const writer = await openResumableJsonlWriter(opts.out, { resume });
  await writeJsonAtomic(stateFile, { ns, run: opts.run, input: opts.input });
  if (writer.resumedRows > 0)
    opts.log?.(`resuming after ${writer.resumedRows} rows already in ${writer.partialPath}`);

  const lines = new Map<number, number>(); // input index → line, for the rows in flight
  async function* todo(): AsyncGenerator<InputRecord> {
    for await (const rec of readInputs(opts.input, opts)) {
      if (rec.index < writer.resumedRows) continue;
      lines.set(rec.index, rec.line);
      yield rec;
    }
  }
  const start = Date.now();
  let result: { rows: number; interrupted: boolean };
  try {
    result = await scoreOnQueue(
      todo(),
      async (recs, scored) => {
        await writer.append(predictionRows(run.labels, recs, scored));
        for (const r of recs) lines.delete(r.index);
      },
      {
        redis: opts.redis,
        fingerprint,
        ns,
        chunkSize,
        block: PREDICT_BLOCK,
        batchSize,
        maxAttempts: opts.maxAttempts,
        inFlight: opts.inFlight,
        remainingRows: countRecords(opts.input, opts).then((n) =>
          n === undefined ? undefined : n - writer.resumedRows,
        ),
        signal: opts.signal,
        onProgress: opts.onProgress,
        log: opts.log,
        describe: (i) => {
          const line = lines.get(i);
          return line === undefined ? undefined : `line ${line} of ${opts.input}`;
        },
      },
    );
  } catch (err) {
    await writer.suspend();
    throw err;
  }
  if (result.interrupted) await writer.suspend();
  else {
    await writer.close();
    await rm(stateFile, { force: true });
  }
  const seconds = (Date.now() - start) / 1000;
  return {
    rows: writer.rowCount,
    resumedRows: writer.resumedRows,
    seconds,
    rowsPerSecond: seconds > 0 ? result.rows / seconds : 0,
    interrupted: result.interrupted,
  };
}
