// `toxlora predict --queue`: the same output as `predict` (rows built and written by the same
// code), scored by the cluster's workers. It resumes as `predict --resume` does (the rows on disk
// and `<out>.state.json`: same input, run and options, same rows consumed), and does so unasked
// when the same command is run again; finished chunks still in Redis are not scored again.
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { DEFAULT_BATCH_SIZE, readRunConfig, readThresholds } from "../predict/classifier.js";
import {
  type InputFormat,
  type InputRecord,
  openResumableJsonlWriter,
  type ReadInputOptions,
  RowDigest,
  readInputs,
  resumableOutput,
} from "../predict/io.js";
import {
  checkResumed,
  checkResumedCount,
  DEFAULT_MAX_TEXT_BYTES,
  PREDICT_BLOCK,
  type PredictFileResult,
  predictionRows,
} from "../predict/predict.js";
import type { QuantLoadOptions } from "../quant/weights.js";
import { type ClusterProgress, scoreOnQueue } from "./coordinator.js";
import { runFingerprint } from "./fingerprint.js";
import { jobNamespace, type QuantSpec, runQuantSpec } from "./jobs.js";
import { checkRedis, type RedisTarget } from "./redis.js";

/** `quantize` etc.: the workers load the run so (and only workers started with them take the chunks). */
export interface QueuePredictOptions extends QuantLoadOptions {
  redis: RedisTarget;
  run: string;
  input: string;
  out: string;
  /**
   * Continue `<out>.partial`, refusing (one line) one made from another input, run or options. Without
   * it, a partial output of the very same job is continued too, and any other is started over.
   */
  resume?: boolean;
  format?: InputFormat;
  textField?: string;
  idField?: string;
  /** Largest text accepted, in UTF-8 bytes (default 1 MiB, as `predict`). */
  maxTextBytes?: number;
  /** Bytes that are not UTF-8 stop the run (naming the line) instead of becoming U+FFFD. */
  strictUtf8?: boolean;
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

/**
 * What a queued classifier is, for `<out>.state.json`: the run, its files' fingerprint and how the
 * workers load it (no URL: no password).
 */
export function queueClassifierIdentity(run: string, fingerprint: string, quant: QuantSpec) {
  return { run: resolve(run), fingerprint, quantize: quant };
}

/** Number of input records (for the ETA); undefined for stdin or an unreadable input. */
async function countRecords(path: string, opts: ReadInputOptions): Promise<number | undefined> {
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
  const run = await readRunConfig(opts.run);
  const quant = runQuantSpec(run, opts, opts.run); // bad options are refused before Redis is asked
  await checkRedis(opts.redis);
  const fingerprint = await runFingerprint(opts.run);
  const chunkSize = opts.chunkSize ?? 2000;
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  const input = opts.input === "-" ? "-" : resolve(opts.input);
  // The keys of `predict`'s identity (src/predict/predict.ts), with the queue's classifier.
  const identity = {
    input,
    inputBytes: input === "-" ? null : (await stat(input)).size,
    format: opts.format ?? null,
    textField: opts.textField ?? null,
    idField: opts.idField ?? null,
    labels: run.labels,
    thresholds: await readThresholds(opts.run, run.labels),
    classifier: queueClassifierIdentity(opts.run, fingerprint, quant),
  };
  const ns = jobNamespace({ kind: "predict", ...identity, out: resolve(opts.out), chunkSize, batchSize });
  const asked = opts.resume === true;
  const resume = asked || (input !== "-" && (await resumableOutput(opts.out, identity)));
  const writer = await openResumableJsonlWriter(opts.out, { resume, identity });
  if (writer.resumedRows > 0)
    opts.log?.(`resuming after ${writer.resumedRows} rows already in ${writer.partialPath}`);

  // Read as `predict` reads (same limits); lines that are not UTF-8 are counted for the summary.
  const reading: ReadInputOptions = {
    format: opts.format,
    textField: opts.textField,
    idField: opts.idField,
    maxTextBytes: opts.maxTextBytes ?? DEFAULT_MAX_TEXT_BYTES,
    strictUtf8: opts.strictUtf8,
  };
  let invalidUtf8Lines = 0;
  let firstInvalidUtf8Line: number | undefined;
  let truncatedRows = 0;
  const lines = new Map<number, number>(); // input index → line, for the rows in flight
  const digest = new RowDigest(); // of the inputs written (and kept): saved with the rows
  async function* todo(): AsyncGenerator<InputRecord> {
    let consumed = 0;
    const onInvalidUtf8 = (line: number) => {
      invalidUtf8Lines++;
      firstInvalidUtf8Line ??= line;
    };
    for await (const rec of readInputs(opts.input, { ...reading, onInvalidUtf8 })) {
      consumed++;
      if (rec.index < writer.resumedRows) {
        digest.add(rec.id, rec.text);
        if (rec.index === writer.resumedRows - 1)
          checkResumed(
            writer,
            digest,
            opts.input,
            asked ? undefined : `delete ${writer.partialPath} to start over`,
          );
        continue;
      }
      lines.set(rec.index, rec.line);
      yield rec;
    }
    checkResumedCount(writer, consumed, opts.input);
  }
  const start = Date.now();
  let result: { rows: number; interrupted: boolean };
  try {
    result = await scoreOnQueue(
      todo(),
      async (recs, scored) => {
        for (const r of recs) digest.add(r.id, r.text);
        truncatedRows += scored.filter((x) => x.truncated).length;
        await writer.append(predictionRows(run.labels, recs, scored), digest.value());
        for (const r of recs) lines.delete(r.index);
      },
      {
        redis: opts.redis,
        fingerprint,
        quant,
        ns,
        chunkSize,
        block: PREDICT_BLOCK,
        batchSize,
        maxAttempts: opts.maxAttempts,
        inFlight: opts.inFlight,
        remainingRows: countRecords(opts.input, reading).then((n) =>
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
  else await writer.close();
  const seconds = (Date.now() - start) / 1000;
  return {
    rows: writer.rowCount,
    resumedRows: writer.resumedRows,
    seconds,
    rowsPerSecond: seconds > 0 ? result.rows / seconds : 0,
    interrupted: result.interrupted,
    truncatedRows,
    invalidUtf8Lines,
    ...(firstInvalidUtf8Line === undefined ? {} : { firstInvalidUtf8Line }),
  };
}
