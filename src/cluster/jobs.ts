// What travels through Redis: one BullMQ job per chunk of input rows, its result, and the names
// that keep runs and outputs apart (queue per run, job ids per output).
import { createHash } from "node:crypto";
import { z } from "zod";
import { isBaselineModel, refuseBaseOptions } from "../baseline/config.js";
import {
  blockSizeOf,
  describeQuantization,
  parseQuantScheme,
  type QuantLoadOptions,
} from "../quant/weights.js";
import { runLoadQuant } from "../run/quant.js";
import type { RunConfig } from "../run/run-config.js";
import type { Scored } from "../run/types.js";

/** Prefix of every key toxlora writes in Redis. */
export const KEY_PREFIX = "toxlora";

/** Job data format version; a worker refuses jobs of another. */
export const JOB_VERSION = 2;

/** How the run's base is quantized when it is loaded (`--quantize`, effective block size); null: float32. */
export const quantSpecSchema = z
  .object({ scheme: z.string(), blockSize: z.number().int(), doubleQuant: z.literal(true).optional() })
  .nullable();
export type QuantSpec = z.infer<typeof quantSpecSchema>;

/**
 * The quantization a worker or coordinator loads with, for the `--quantize` flags (checked);
 * resolve a run's default first (runLoadQuant).
 */
export function quantSpec(o: QuantLoadOptions): QuantSpec {
  if (!o.quantize || o.quantize === "none") return null;
  const scheme = parseQuantScheme(o.quantize);
  const spec: NonNullable<QuantSpec> = {
    scheme,
    blockSize: blockSizeOf({ scheme, blockSize: o.quantBlockSize, doubleQuant: o.doubleQuant }),
  };
  if (o.doubleQuant) spec.doubleQuant = true;
  return spec;
}

/**
 * How the coordinator or a worker loads the run in `runDir` (its own scheme unless `opts` say
 * otherwise); a tfidf-lr run, which has no base, refuses --quantize and the like in one line.
 */
export function runQuantSpec(run: RunConfig, opts: QuantLoadOptions, runDir: string): QuantSpec {
  if (isBaselineModel(run.model)) refuseBaseOptions(opts);
  return quantSpec(runLoadQuant(run, opts, runDir).options);
}

/** "int8 (block 32)", "nf4 (block 64, double-quant)" or "none": for messages. */
export function describeQuant(q: QuantSpec): string {
  return describeQuantization(q);
}

/** One chunk to score: rows `first … first + texts.length − 1` of an input. */
export const chunkJobSchema = z.object({
  v: z.literal(JOB_VERSION),
  /** Fingerprint of the run the chunk must be scored with (see runFingerprint). */
  run: z.string(),
  /** How the worker must load the run (see quantSpec): a worker loading it otherwise refuses the job. */
  quant: quantSpecSchema,
  /** The output's namespace (see jobNamespace). */
  ns: z.string(),
  chunk: z.number().int().nonnegative(),
  first: z.number().int().nonnegative(),
  /** Classifier calls are cut at multiples of this input index (see scoreAligned). */
  block: z.number().int().positive(),
  batchSize: z.number().int().positive(),
  texts: z.array(z.string()),
});
export type ChunkJob = z.infer<typeof chunkJobSchema>;

/**
 * A scored chunk: probabilities as computed (JSON keeps doubles exact), 0/1 decisions and the
 * offsets of texts cut at the model's max length.
 */
export interface ChunkResult {
  probs: number[][];
  decisions: number[][];
  truncated?: number[];
}

export function toResult(scored: readonly Scored[]): ChunkResult {
  return {
    probs: scored.map((s) => s.probs),
    decisions: scored.map((s) => s.decisions.map((d) => (d ? 1 : 0))),
    truncated: scored.flatMap((s, i) => (s.truncated ? [i] : [])),
  };
}

export function fromResult(r: ChunkResult, rows: number): Scored[] {
  if (!Array.isArray(r?.probs) || r.probs.length !== rows || r.decisions?.length !== rows) {
    throw new Error(`a worker returned a malformed result (expected ${rows} rows)`);
  }
  const truncated = new Set(r.truncated ?? []);
  return r.probs.map((probs, i) => ({
    probs,
    decisions: r.decisions[i].map((d) => d === 1),
    ...(truncated.has(i) ? { truncated: true } : {}),
  }));
}

/**
 * The queue serving one run loaded one way: workers of that run with that `--quantize` listen on it
 * and nothing else, so workers loading the run otherwise never take (and fail) its chunks.
 */
export function queueName(runFingerprint: string, quant: QuantSpec = null): string {
  const q = quant ? `-${quant.scheme}-b${quant.blockSize}${quant.doubleQuant ? "-dq" : ""}` : "";
  return `score-${runFingerprint.slice(0, 16)}${q}`;
}

/**
 * A namespace for one coordinator's jobs, from everything that decides its rows (no URL, so no
 * password): the same command restarted finds its own jobs; two outputs never share one.
 */
export function jobNamespace(identity: Record<string, unknown>): string {
  return createHash("sha256").update(JSON.stringify(identity)).digest("hex").slice(0, 16);
}

export function jobId(ns: string, chunk: number): string {
  return `${ns}-${chunk}`;
}
