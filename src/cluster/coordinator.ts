// The coordinator side of the queue: cuts a stream of input rows into chunk jobs, keeps a bounded
// window of them in Redis, and hands each chunk's scores back in input order. It holds the window's
// texts in memory too, so a chunk lost with a Redis restart is simply queued again.
import { setTimeout as sleep } from "node:timers/promises";
import { type Job, Queue } from "bullmq";
import type { Scored } from "../run/types.js";
import {
  type ChunkJob,
  type ChunkResult,
  describeQuant,
  fromResult,
  JOB_VERSION,
  jobId,
  KEY_PREFIX,
  type QuantSpec,
  queueName,
} from "./jobs.js";
import { type RedisTarget, redact, redactedMessage } from "./redis.js";

/** Cluster-wide progress, reported about once a second. */
export interface ClusterProgress {
  /** Rows written by this coordinator so far. */
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  /** Workers connected to the run's queue (all coordinators share them); undefined when unknown. */
  workers?: number;
  /** Rows still to write, when the input's size is known. */
  remaining?: number;
  etaSeconds?: number;
}

export interface QueueScoringOptions {
  redis: RedisTarget;
  /** Fingerprint of the run (chooses the queue; workers check it). */
  fingerprint: string;
  /** How workers must load the run (chooses the queue too; see quantSpec). */
  quant: QuantSpec;
  /** This output's namespace (see jobNamespace). */
  ns: string;
  /** Rows per job; chunks start at multiples of it (so a restart finds the same jobs). */
  chunkSize: number;
  /** Classifier calls are cut at multiples of this index (see scoreAligned). */
  block: number;
  batchSize: number;
  /** Tries per chunk before the run stops (default 3). */
  maxAttempts?: number;
  /** Chunks in Redis at once (default 16): bounds Redis memory and what a restart re-scores. */
  inFlight?: number;
  /** Rows of the input still to score, when known (for the ETA). */
  remainingRows?: Promise<number | undefined>;
  /** Stop adding chunks, write what is finished in order, and return `interrupted`. */
  signal?: AbortSignal;
  onProgress?: (p: ClusterProgress) => void;
  /** Log lines (redacted). */
  log?: (line: string) => void;
  /** Names a row in error messages (e.g. "line 12 of posts.jsonl"). */
  describe?: (index: number) => string | undefined;
}

/** A chunk that failed `maxAttempts` times; the run stops. */
export class ChunkFailedError extends Error {}

interface Pending<R> {
  chunk: number;
  id: string;
  records: R[];
}

const POLL_MS = [20, 50, 100, 200, 250];

/**
 * Scores `records` (consecutive input rows, in order) on the queue and calls `write` with each
 * chunk's rows and scores, in input order. Each job is deleted (texts and scores) once written.
 */
export async function scoreOnQueue<R extends { index: number; text: string }>(
  records: AsyncIterable<R>,
  write: (records: R[], scored: Scored[]) => Promise<void>,
  opts: QueueScoringOptions,
): Promise<{ rows: number; interrupted: boolean }> {
  const { redis, chunkSize } = opts;
  const secrets = redis.secrets;
  const log = (line: string) => opts.log?.(redact(line, secrets));
  const maxAttempts = opts.maxAttempts ?? 3;
  const inFlight = opts.inFlight ?? 16;
  const name = queueName(opts.fingerprint, opts.quant);
  const queue = new Queue(name, { connection: redis.options, prefix: KEY_PREFIX });
  let lastError = "";
  queue.on("error", (err) => {
    const msg = redactedMessage(err, secrets);
    if (msg !== lastError) log(`redis: ${msg} (retrying)`);
    lastError = msg;
  });

  const jobData = (p: Pending<R>): ChunkJob => ({
    v: JOB_VERSION,
    run: opts.fingerprint,
    quant: opts.quant,
    ns: opts.ns,
    chunk: p.chunk,
    first: p.records[0].index,
    block: opts.block,
    batchSize: opts.batchSize,
    texts: p.records.map((r) => r.text),
  });
  const enqueue = async (p: Pending<R>): Promise<void> => {
    const state = await queue.getJobState(p.id);
    if (state === "failed") await queue.remove(p.id); // from an earlier attempt at this output: try again
    if (state === "unknown" || state === "failed") {
      await queue.add("chunk", jobData(p), {
        jobId: p.id,
        attempts: maxAttempts,
        backoff: { type: "fixed", delay: 200 },
        removeOnComplete: false,
        removeOnFail: false,
      });
    }
  };
  /** The chunk's scores from a finished job, or undefined when the job holds other texts. */
  const scoresOf = (job: Job, p: Pending<R>): Scored[] | undefined => {
    const data = job.data as ChunkJob;
    const offset = p.records[0].index - data.first;
    const texts = data.texts?.slice(offset, offset + p.records.length) ?? [];
    if (offset < 0 || texts.length !== p.records.length || texts.some((t, i) => t !== p.records[i].text)) {
      return undefined;
    }
    const all = fromResult(job.returnvalue as ChunkResult, data.texts.length);
    return all.slice(offset, offset + p.records.length);
  };
  const failure = (job: Job | undefined, p: Pending<R>): ChunkFailedError => {
    const first = p.records[0].index;
    const last = first + p.records.length - 1;
    let reason = job?.failedReason ?? "unknown reason";
    const row = /^row (\d+) cannot be scored: /.exec(reason);
    if (row) {
      const where = opts.describe?.(Number(row[1]));
      reason = `row ${row[1]}${where ? ` (${where})` : ""} cannot be scored: ${reason.slice(row[0].length)}`;
    }
    const tries = job?.attemptsMade ?? maxAttempts;
    return new ChunkFailedError(
      `chunk ${p.chunk} (rows ${first}–${last}) failed after ${tries} attempt${tries === 1 ? "" : "s"}: ${reason}`,
    );
  };

  const it = records[Symbol.asyncIterator]();
  let ahead: IteratorResult<R> | undefined; // read first inside the try: a bad input still closes the queue
  const readChunk = async (): Promise<Pending<R> | undefined> => {
    ahead ??= await it.next();
    if (ahead.done) return undefined;
    const chunk = Math.floor(ahead.value.index / chunkSize);
    const recs: R[] = [];
    while (!ahead.done && Math.floor(ahead.value.index / chunkSize) === chunk) {
      recs.push(ahead.value);
      ahead = await it.next();
    }
    return { chunk, id: jobId(opts.ns, chunk), records: recs };
  };

  const pending: Pending<R>[] = [];
  const start = Date.now();
  let rows = 0;
  let remaining: number | undefined;
  void opts.remainingRows?.then((n) => {
    remaining = n === undefined ? undefined : n - rows;
  });
  let lastProgress = 0;
  let workers: number | undefined;
  let warnedIdle = false;
  const progress = async (force = false) => {
    if (!opts.onProgress || (!force && Date.now() - lastProgress < 1000)) return;
    lastProgress = Date.now();
    workers = await queue.getWorkersCount().catch(() => undefined); // CLIENT LIST may be disabled
    const seconds = (Date.now() - start) / 1000;
    if (workers === 0 && seconds > 10 && !warnedIdle) {
      warnedIdle = true; // e.g. workers started without (or with another) --quantize listen elsewhere
      log(
        `no worker serves queue ${name} yet (workers of this run with --quantize ${describeQuant(opts.quant)})`,
      );
    }
    const rate = seconds > 0 ? rows / seconds : 0;
    opts.onProgress({
      rows,
      seconds,
      rowsPerSecond: rate,
      workers,
      remaining,
      etaSeconds: remaining !== undefined && rate > 0 ? remaining / rate : undefined,
    });
  };

  let interrupted = false;
  try {
    await queue.waitUntilReady();
    for (let idle = 0; ; ) {
      while (pending.length < inFlight && !opts.signal?.aborted) {
        const p = await readChunk();
        if (!p) break;
        pending.push(p);
        await enqueue(p);
      }
      const head = pending[0];
      if (!head) {
        // Stopped between chunks with input left: not finished (the caller keeps a partial output).
        interrupted = opts.signal?.aborted === true && ahead?.done !== true;
        break;
      }
      const state = await queue.getJobState(head.id);
      if (state === "completed") {
        const job = await queue.getJob(head.id);
        const scored = job ? scoresOf(job, head) : undefined;
        if (!job || !scored) {
          // Left by an earlier run over other texts (or gone meanwhile): score this chunk afresh.
          if (job) await job.remove();
          await enqueue(head);
          continue;
        }
        await write(head.records, scored);
        await job.remove(); // the texts and scores leave Redis once they are on disk
        pending.shift();
        rows += head.records.length;
        if (remaining !== undefined) remaining -= head.records.length;
        idle = 0;
        await progress();
        continue;
      }
      if (state === "failed") throw failure(await queue.getJob(head.id), head);
      if (state === "unknown") {
        // Redis lost the jobs (restarted without persistence, flushed): queue the window again.
        let lost = 0;
        for (const p of pending) {
          if ((await queue.getJobState(p.id)) === "unknown") {
            lost++;
            await enqueue(p);
          }
        }
        if (lost > 0) log(`${lost} chunk${lost === 1 ? " was" : "s were"} missing from Redis; queued again`);
        continue;
      }
      if (opts.signal?.aborted && state !== "active") {
        interrupted = true;
        break;
      }
      await progress();
      await sleep(POLL_MS[Math.min(idle++, POLL_MS.length - 1)]);
    }
    await progress(true);
  } catch (err) {
    // Stopping for good: take this output's texts out of Redis (a chunk being scored keeps its lock).
    for (const p of pending) await queue.remove(p.id).catch(() => 0);
    throw err;
  } finally {
    await queue.close();
  }
  return { rows, interrupted };
}
