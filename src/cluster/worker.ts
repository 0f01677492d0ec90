// `toxlora worker`: takes chunk jobs of one run from the queue, scores them exactly as `predict`
// would (same classifier calls, same batch size), and leaves each result on its job for the
// coordinator. A worker that dies mid-chunk loses its lock; another worker's stalled-job check puts
// the chunk back in the queue.
import { hostname } from "node:os";
import { type Job, UnrecoverableError, Worker } from "bullmq";
import { loadClassifier, readRunConfig } from "../predict/classifier.js";
import { scoreAligned } from "../predict/predict.js";
import type { QuantLoadOptions } from "../quant/weights.js";
import type { Classifier } from "../run/types.js";
import { runFingerprint } from "./fingerprint.js";
import {
  type ChunkJob,
  type ChunkResult,
  chunkJobSchema,
  describeQuant,
  KEY_PREFIX,
  type QuantSpec,
  queueName,
  runQuantSpec,
  toResult,
} from "./jobs.js";
import { checkRedis, type RedisTarget, redact, redactedMessage } from "./redis.js";

/** `quantize` etc. load the run's base quantized (as `predict --quantize`); the worker then serves that queue. */
export interface WorkerOptions extends QuantLoadOptions {
  /** Redis to take jobs from. */
  redis: RedisTarget;
  /** Run directory whose classifier scores the chunks. */
  run: string;
  /** CPU threads of the classifier. */
  threads?: number;
  /** Chunks scored at once (default 1). */
  concurrency?: number;
  /**
   * Seconds a chunk's lock lives without renewal (default 30): how long a killed worker's chunk
   * waits before another worker takes it again. Renewed every half of it while scoring.
   */
  lockSeconds?: number;
  /** Times a chunk may be found abandoned before it fails (default 5). */
  maxStalled?: number;
  /** Log lines (already redacted). */
  log?: (line: string) => void;
  /** A classifier to use instead of loading `run` (tests, embedding). */
  classifier?: Classifier;
}

export interface RunningWorker {
  readonly name: string;
  readonly queue: string;
  readonly fingerprint: string;
  /** How the run is loaded (see quantSpec). */
  readonly quant: QuantSpec;
  /** Chunks scored so far. */
  readonly chunks: number;
  /** Stop taking chunks; resolves when the current ones are finished and stored. */
  close(): Promise<void>;
}

/** Scores a chunk; when it fails, finds the first row that fails alone and names it. */
async function scoreChunk(clf: Classifier, job: ChunkJob): Promise<ChunkResult> {
  const opts = { block: job.block, batchSize: job.batchSize };
  try {
    return toResult(await scoreAligned(clf, job.first, job.texts, opts));
  } catch (err) {
    for (const [k, text] of job.texts.entries()) {
      try {
        await clf.predict([text], { batchSize: 1 });
      } catch (rowErr) {
        const msg = rowErr instanceof Error ? rowErr.message : String(rowErr);
        throw new Error(`row ${job.first + k} cannot be scored: ${msg}`);
      }
    }
    throw err; // no single row fails: the chunk as a whole does
  }
}

/** Starts a worker (after checking Redis and loading the classifier). */
export async function startWorker(opts: WorkerOptions): Promise<RunningWorker> {
  const { redis } = opts;
  const log = (line: string) => opts.log?.(redact(line, redis.secrets));
  const quant = runQuantSpec(await readRunConfig(opts.run), opts, opts.run); // before Redis is asked
  await checkRedis(redis);
  const fingerprint = await runFingerprint(opts.run);
  const clf =
    opts.classifier ??
    (await loadClassifier(opts.run, {
      threads: opts.threads,
      quantize: opts.quantize,
      quantBlockSize: opts.quantBlockSize,
      doubleQuant: opts.doubleQuant,
      quantCache: opts.quantCache,
      onNotice: (line) => log(`note: ${line}`),
    }));
  const name = `${hostname()}:${process.pid}`;
  const queue = queueName(fingerprint, quant);
  const lockMs = Math.round((opts.lockSeconds ?? 30) * 1000);
  let chunks = 0;

  const processor = async (job: Job): Promise<ChunkResult> => {
    const parsed = chunkJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`job ${job.id} is not a toxlora chunk of this version`);
    const data = parsed.data;
    if (data.run !== fingerprint) {
      throw new UnrecoverableError(
        `job ${job.id} was made for run ${data.run.slice(0, 16)}, this worker serves ${fingerprint.slice(0, 16)} (${opts.run})`,
      );
    }
    if (JSON.stringify(data.quant) !== JSON.stringify(quant)) {
      throw new UnrecoverableError(
        `job ${job.id} was made for --quantize ${describeQuant(data.quant)}, this worker loads the run with ${describeQuant(quant)}`,
      );
    }
    const start = Date.now();
    const result = await scoreChunk(clf, data);
    chunks++;
    const s = (Date.now() - start) / 1000;
    log(
      `chunk ${job.id}: ${data.texts.length} rows in ${s.toFixed(1)} s (${(data.texts.length / Math.max(s, 1e-3)).toFixed(1)}/s)`,
    );
    return result;
  };

  const worker = new Worker(queue, processor, {
    connection: redis.options,
    prefix: KEY_PREFIX,
    name,
    concurrency: opts.concurrency ?? 1,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    maxStalledCount: opts.maxStalled ?? 5,
    autorun: false,
  });
  let lastError = "";
  worker.on("error", (err) => {
    const msg = redactedMessage(err, redis.secrets);
    if (msg !== lastError) log(`redis: ${msg}`); // a restart repeats the same error: say it once
    lastError = msg;
  });
  worker.on("ready", () => {
    if (lastError !== "") log("redis: connected again");
    lastError = "";
  });
  worker.on("stalled", (id) => log(`chunk ${id} was abandoned by its worker; queued again`));
  worker.on("failed", (job, err) => {
    if (job)
      log(`chunk ${job.id} failed (attempt ${job.attemptsMade}): ${redactedMessage(err, redis.secrets)}`);
  });
  void worker.run().catch((err: unknown) => log(`worker stopped: ${redactedMessage(err, redis.secrets)}`));
  await worker.waitUntilReady();
  log(
    `worker ${name} ready: run ${opts.run} (${fingerprint.slice(0, 16)}, quantize ${describeQuant(quant)}) on ${redis.display}, queue ${queue}`,
  );

  return {
    name,
    queue,
    fingerprint,
    quant,
    get chunks() {
      return chunks;
    },
    async close() {
      await worker.close();
      if (!opts.classifier) await clf.close();
    },
  };
}
