// `npm run bench:engine`: how close the engine's forward and training step come to the machine's
// matmul ceiling. A BERT-base-shaped stack of 2 encoder layers (hidden 768, 12 heads, FFN 3072,
// batch 8 x seq 128, LoRA r=8 on all linears, frozen base) is timed next to a plain ONNX MatMul
// chain of the same linear shapes with initializer weights, in the same run, interleaved.
// Results: one JSON line on stdout and bench/results/engine.json.

import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import * as E from "../src/engine/index.js";

const cfg = { layers: 2, hidden: 768, heads: 12, ffn: 3072, batch: 8, seq: 128, r: 8, alpha: 16 };
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}
const rand = rng(1);
const randArray = (n: number, scale: number) => Float32Array.from({ length: n }, () => rand() * scale);

/** The encoder stack; `lora` adds trainable LoRA factors on every linear. */
function buildStack(g: E.Graph, lora: boolean) {
  const { hidden, heads, ffn, r, alpha } = cfg;
  const hd = hidden / heads;
  const x0 = g.input("hidden_states", "float32", ["batch", "seq", hidden]);
  const mask = g.input("attention_mask", "float32", ["batch", "seq"]);
  const params: E.Tensor[] = [];
  const init = new Map<string, Float32Array>();
  const linear = (name: string, x: E.Tensor, din: number, dout: number) => {
    const w = g.initializer(
      `${name}.weight`,
      "float32",
      [dout, din],
      randArray(dout * din, 1 / Math.sqrt(din)),
    );
    const b = g.initializer(`${name}.bias`, "float32", [dout], randArray(dout, 0.02));
    let y = E.add(E.matmul(x, w, { transB: true }), b);
    if (lora) {
      const a = g.param(`${name}.lora_A.weight`, [r, din]);
      const bb = g.param(`${name}.lora_B.weight`, [dout, r]);
      params.push(a, bb);
      init.set(a.name, randArray(r * din, 1 / Math.sqrt(din)));
      init.set(bb.name, randArray(dout * r, 0.01));
      y = E.add(y, E.matmul(E.matmul(x, a, { transB: true }), bb, { transB: true, alpha: alpha / r }));
    }
    return y;
  };
  const norm = (name: string, x: E.Tensor) =>
    E.layerNorm(
      x,
      g.initializer(`${name}.weight`, "float32", [hidden], new Float32Array(hidden).fill(1)),
      g.initializer(`${name}.bias`, "float32", [hidden], new Float32Array(hidden)),
      1e-12,
    );
  const keyMask = E.unsqueeze(E.mul(E.rsub(1, mask), E.scalar(g, -1e9)), [1, 2]);
  const heads4 = (t: E.Tensor) => E.transpose(E.reshape(t, ["batch", "seq", heads, hd]), [0, 2, 1, 3]);
  let x = x0;
  for (let l = 0; l < cfg.layers; l++) {
    const p = `layer.${l}`;
    const q = heads4(linear(`${p}.attention.query`, x, hidden, hidden));
    const k = heads4(linear(`${p}.attention.key`, x, hidden, hidden));
    const v = heads4(linear(`${p}.attention.value`, x, hidden, hidden));
    const probs = E.softmax(E.add(E.matmul(q, k, { transB: true, alpha: 1 / Math.sqrt(hd) }), keyMask));
    const ctx = E.reshape(E.transpose(E.matmul(probs, v), [0, 2, 1, 3]), ["batch", "seq", hidden]);
    const h = norm(`${p}.attention.norm`, E.add(linear(`${p}.attention.output`, ctx, hidden, hidden), x));
    const f = linear(`${p}.output`, E.gelu(linear(`${p}.intermediate`, h, hidden, ffn)), ffn, hidden);
    x = norm(`${p}.output.norm`, E.add(f, h));
  }
  return { out: x, params, init };
}

/** The ceiling: the same linear matmuls as a plain chain with initializer weights. */
function buildCeiling(g: E.Graph) {
  const { hidden, ffn } = cfg;
  let x = g.input("hidden_states", "float32", ["batch*seq", hidden]);
  for (let l = 0; l < cfg.layers; l++) {
    for (const [din, dout] of [
      [hidden, hidden],
      [hidden, hidden],
      [hidden, hidden],
      [hidden, hidden],
      [hidden, ffn],
      [ffn, hidden],
    ]) {
      x = E.matmul(
        x,
        g.initializer(`w${l}_${din}_${dout}_${x.id}`, "float32", [din, dout], randArray(din * dout, 0.03)),
      );
    }
  }
  g.output("out", x);
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const { batch, seq, hidden } = cfg;
  const dims = { batch, seq, "batch*seq": batch * seq };
  const feeds = {
    hidden_states: E.tensor("float32", randArray(batch * seq * hidden, 1), [batch, seq, hidden]),
    attention_mask: E.tensor("float32", new Float32Array(batch * seq).fill(1), [batch, seq]),
  };

  // Ceiling
  const gc = new E.Graph();
  buildCeiling(gc);
  const ceiling = await E.Session.fromGraph(gc);
  const ceilingFlops = E.matmulFlops(gc, dims);
  const ceilingFeeds = {
    hidden_states: E.tensor("float32", feeds.hidden_states.data as Float32Array, [batch * seq, hidden]),
  };

  // Forward only (LoRA branch included, as inference without merging would run it)
  const gf = new E.Graph();
  const fwd = buildStack(gf, true);
  gf.output("out", fwd.out);
  const forward = await E.Session.fromGraph(gf);
  const forwardFlops = E.matmulFlops(gf, dims);
  const forwardFeeds = {
    ...feeds,
    ...Object.fromEntries(
      [...fwd.init].map(([k, v]) => [
        k,
        E.tensor("float32", v, gf.params.find((p) => p.name === k)?.shape as number[]),
      ]),
    ),
  };

  // Full training step: forward + backward (LoRA grads only) + AdamW
  const gt = new E.Graph();
  const tr = buildStack(gt, true);
  const loss = E.meanAll(E.mul(tr.out, tr.out));
  gt.output("loss", loss);
  const opt = E.adamw(gt, E.grad(loss, tr.params), { weightDecay: 0.01 });
  const train = await E.TrainSession.create(gt, opt, tr.init);
  const trainFlops = E.matmulFlops(gt, dims);

  // Warm up, then interleave so that machine noise hits all three alike.
  await ceiling.run(ceilingFeeds);
  await forward.run(forwardFeeds);
  await train.run(feeds, 1e-4);
  const tc: number[] = [];
  const tf: number[] = [];
  const tt: number[] = [];
  for (let i = 0; i < rounds; i++) {
    tc.push(await time(() => ceiling.run(ceilingFeeds)));
    tf.push(await time(() => forward.run(forwardFeeds)));
    tt.push(await time(() => train.run(feeds, 1e-4)));
    process.stderr.write(
      `round ${i + 1}/${rounds}: ceiling ${tc[i].toFixed(3)}s forward ${tf[i].toFixed(3)}s train ${tt[i].toFixed(3)}s\n`,
    );
  }
  const ceilingGflops = ceilingFlops / median(tc) / 1e9;
  const forwardGflops = forwardFlops / median(tf) / 1e9;
  const trainGflops = trainFlops / median(tt) / 1e9;
  const result = {
    bench: "engine",
    config: cfg,
    threads: availableParallelism(),
    rounds,
    ceiling_gflops: +ceilingGflops.toFixed(1),
    forward_gflops: +forwardGflops.toFixed(1),
    train_gflops: +trainGflops.toFixed(1),
    forward_ratio: +(forwardGflops / ceilingGflops).toFixed(3),
    train_ratio: +(trainGflops / ceilingGflops).toFixed(3),
    tokens_per_s_train: +((batch * seq) / median(tt)).toFixed(1),
    tokens_per_s_forward: +((batch * seq) / median(tf)).toFixed(1),
    matmul_gflop: { ceiling: ceilingFlops / 1e9, forward: forwardFlops / 1e9, train: trainFlops / 1e9 },
    median_seconds: { ceiling: median(tc), forward: median(tf), train: median(tt) },
    date: new Date().toISOString(),
  };
  console.log(JSON.stringify(result));
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(new URL("./results/engine.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
}

await main();
