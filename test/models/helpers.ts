// Shared helpers of the model tests: the reference fixtures, running a graph, comparing arrays.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { type Graph, Session, type Tensor, tensor } from "../../src/engine/index.js";
import { type F32Tensor, readSafetensors } from "../../src/io/safetensors.js";
import { fixture } from "../fixture.js";

export const REFERENCE = fixture("reference");

export type Arch = "bert" | "llama" | "modernbert";

export interface Batch {
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids?: number[][];
}

export interface FixtureInputs extends Batch {
  left_padded?: Batch;
}

export function fixtureInputs(arch: Arch): FixtureInputs {
  return JSON.parse(readFileSync(path.join(REFERENCE, arch, "inputs.json"), "utf8"));
}

export function fixtureLabels(arch: Arch): number[][] {
  return JSON.parse(readFileSync(path.join(REFERENCE, arch, "lora", "labels.json"), "utf8")).labels;
}

export async function expected(arch: Arch, file: string): Promise<Map<string, F32Tensor>> {
  return readSafetensors(path.join(REFERENCE, arch, file));
}

function int64(rows: number[][]) {
  return tensor("int64", rows.flat(), [rows.length, rows[0].length]);
}

/** Feeds for a batch (token_type_ids zero when the graph wants them and the batch has none). */
export function batchFeeds(batch: Batch) {
  const feeds: Record<string, ReturnType<typeof tensor>> = {
    input_ids: int64(batch.input_ids),
    attention_mask: int64(batch.attention_mask),
    token_type_ids: int64(batch.token_type_ids ?? batch.input_ids.map((r) => r.map(() => 0))),
  };
  return feeds;
}

/** Runs `g` once (params fed from `initial`) and returns every output as Float32Array. */
export async function runGraph(
  g: Graph,
  feeds: Record<string, ReturnType<typeof tensor>>,
  initial: Map<string, Float32Array>,
  params: Tensor[],
): Promise<Map<string, { data: Float32Array; dims: number[] }>> {
  const all = { ...feeds };
  for (const p of params) {
    const v = initial.get(p.name);
    if (!v) throw new Error(`no initial value for ${p.name}`);
    all[p.name] = tensor("float32", v, p.shape as number[]);
  }
  const s = await Session.fromGraph(g, { threads: 1 });
  try {
    const used: typeof all = {};
    for (const n of s.inputNames) used[n] = all[n];
    const out = await s.run(used);
    return new Map(
      Object.entries(out).map(([k, v]) => [
        k,
        { data: v.data as Float32Array, dims: [...v.dims] as number[] },
      ]),
    );
  } finally {
    await s.release();
  }
}

/** max |a - b| over all entries (optionally only where `keep(i)`). */
export function maxAbsDiff(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  keep?: (i: number) => boolean,
): number {
  assert.equal(a.length, b.length, "length mismatch");
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    if (keep && !keep(i)) continue;
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return m;
}

/** Asserts |a - b| <= atol everywhere (`what` names the tensor in the message). */
export function assertClose(
  what: string,
  actual: ArrayLike<number>,
  want: ArrayLike<number>,
  atol: number,
  keep?: (i: number) => boolean,
): void {
  const d = maxAbsDiff(actual, want, keep);
  assert.ok(d <= atol, `${what}: max abs diff ${d.toExponential(3)} > ${atol}`);
}

/** Gradient check: |a - b| <= atol + rtol · max|b| (per tensor, as the fixture README suggests). */
export function assertGradClose(what: string, actual: ArrayLike<number>, want: ArrayLike<number>): void {
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  const tol = 2e-5 + 1e-4 * scale;
  const d = maxAbsDiff(actual, want);
  assert.ok(d <= tol, `${what}: max abs diff ${d.toExponential(3)} > ${tol.toExponential(3)}`);
}

/** Index filter for [B, T, H] tensors: true where attention_mask[b][t] is 1. */
export function realTokens(mask: number[][], hidden: number): (i: number) => boolean {
  const T = mask[0].length;
  return (i) => {
    const bt = Math.floor(i / hidden);
    return mask[Math.floor(bt / T)][bt % T] === 1;
  };
}
