// `npm run bench:explain`: the cost of explaining one post, relative to scoring it. A BERT-base-shaped
// random model (12 layers, hidden 768, 12 heads, FFN 3072, 3 labels, multilabel head), one
// 64-token post; measured side by side in one process: one forward pass (batch 1, the prediction
// graph), integrated gradients over all labels with BENCH_STEPS (default 32) Gauss–Legendre steps
// batched into one graph run (plus the input and baseline rows), and gradient × input.
// Target (issue #16): IG ≤ 2.5 × steps forward-pass equivalents.
// Results: one JSON line on stdout and bench/results/explain.json.
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Graph, Session, tensor } from "../src/engine/index.js";
import { Attributor } from "../src/explain/attribute.js";
import { writeJsonAtomic } from "../src/io/atomic.js";
import { writeRandomCheckpoint } from "../src/models/random-checkpoint.js";
import { buildClassifier, loadCheckpoint } from "../src/models/registry.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const STEPS = Number(process.env.BENCH_STEPS ?? 32);
const TOKENS = 64;
const LABELS = 3;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

async function time(f: () => Promise<unknown>, n: number): Promise<number> {
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)];
}

const dir = mkdtempSync(join(tmpdir(), "toxlora-bench-explain-"));
try {
  const shape = { hidden: 768, layers: 12, heads: 12, intermediate: 3072, vocab: 32000 };
  await writeRandomCheckpoint(dir, {
    arch: "bert",
    vocabSize: shape.vocab,
    hidden: shape.hidden,
    layers: shape.layers,
    heads: shape.heads,
    intermediate: shape.intermediate,
    maxPositions: 512,
    labels: ["obscene", "discriminatory", "corporate"],
    padTokenId: 0,
    seed: 1,
    dropout: 0,
  });
  const ids = Array.from({ length: TOKENS }, (_, i) =>
    i === 0 ? 2 : i === TOKENS - 1 ? 3 : 5 + ((i * 7919) % 31000),
  );
  const keep = ids.map((_, i) => i === 0 || i === TOKENS - 1);
  const head = { kind: "multilabel" as const, numLabels: LABELS };

  const g = new Graph();
  const m = buildClassifier(g, await loadCheckpoint(dir), { head, merged: true, mergeInPlace: true });
  g.output("probs", m.probs);
  const fwd = await Session.fromGraph(g);
  const att = await Attributor.create(await loadCheckpoint(dir), { head, baselineId: 0 });
  const row = (v: (i: number) => number) =>
    tensor("int64", BigInt64Array.from(ids.map((_, i) => BigInt(v(i)))), [1, TOKENS]);
  const feeds = { input_ids: row((i) => ids[i]), attention_mask: row(() => 1), token_type_ids: row(() => 0) };
  const forward = () => fwd.run(feeds);
  const ig = () => att.attribute(ids, { steps: STEPS, keep });
  const gxi = () => att.attribute(ids, { method: "grad-x-input", keep });
  // warm-up, then interleaved rounds so that other load on the machine hits all three alike
  await forward();
  await ig();
  await gxi();
  const f: number[] = [];
  const a: number[] = [];
  const x: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    f.push(await time(forward, 9));
    a.push(await time(ig, 1));
    x.push(await time(gxi, 3));
  }
  const med = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)];
  const forwardMs = med(f);
  const igMs = med(a);
  const gxiMs = med(x);
  const last = await ig();
  const completeness = last.attributions.map((at, j) => {
    const d = last.logits[j] - last.baselineLogits[j];
    return Math.abs(at.reduce((s, v) => s + v, 0) - d) / Math.max(1e-6, Math.abs(d));
  });
  const result = {
    bench: "explain",
    model: `bert ${shape.layers}x${shape.hidden}, heads ${shape.heads}, ffn ${shape.intermediate}, vocab ${shape.vocab}`,
    tokens: TOKENS,
    labels: LABELS,
    steps: STEPS,
    rows_per_run: STEPS + 2,
    threads: availableParallelism(),
    rounds: ROUNDS,
    forward_ms: Number(forwardMs.toFixed(2)),
    ig_ms: Number(igMs.toFixed(1)),
    grad_x_input_ms: Number(gxiMs.toFixed(1)),
    ig_forward_equivalents: Number((igMs / forwardMs).toFixed(1)),
    ig_target_forward_equivalents: 2.5 * STEPS,
    ig_meets_target: igMs / forwardMs <= 2.5 * STEPS,
    ig_forward_equivalents_per_step_and_label: Number((igMs / forwardMs / STEPS / LABELS).toFixed(2)),
    grad_x_input_forward_equivalents: Number((gxiMs / forwardMs).toFixed(1)),
    ig_completeness_error_max: Number(Math.max(...completeness).toExponential(2)),
    node: process.version,
    date: new Date().toISOString(),
  };
  await fwd.release();
  await att.close();
  console.log(JSON.stringify(result));
  await writeJsonAtomic(join(ROOT, "bench", "results", "explain.json"), result);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
