// End-to-end learning with the engine: the whole step (forward, backward, AdamW) is one ONNX graph.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as E from "../../src/engine/index.js";
import { rand } from "./gradcheck.js";

test("a 2-layer MLP fits a small nonlinear regression (loss falls by > 90%)", async () => {
  const n = 64;
  const xs = rand(n * 4, 11);
  const ys = Array.from({ length: n }, (_, i) => Math.sin(2 * xs[i * 4]) + xs[i * 4 + 1] * xs[i * 4 + 2]);
  const g = new E.Graph();
  const x = g.input("x", "float32", ["batch", 4]);
  const y = g.input("y", "float32", ["batch", 1]);
  const w1 = g.param("w1", [4, 32]);
  const b1 = g.param("b1", [32]);
  const w2 = g.param("w2", [32, 1]);
  const h = E.tanh(E.add(E.matmul(x, w1), b1));
  const d = E.sub(E.matmul(h, w2), y);
  const loss = E.meanAll(E.mul(d, d));
  g.output("loss", loss);
  const opt = E.adamw(g, E.grad(loss, [w1, b1, w2]), { weightDecay: 0 });
  const init = new Map([
    ["w1", Float32Array.from(rand(128, 1, -0.5, 0.5))],
    ["b1", new Float32Array(32)],
    ["w2", Float32Array.from(rand(32, 2, -0.2, 0.2))],
  ]);
  const s = await E.TrainSession.create(g, opt, init, { threads: 1 });
  const feeds = { x: E.tensor("float32", xs, [n, 4]), y: E.tensor("float32", ys, [n, 1]) };
  const first = (await s.run(feeds, 0.01)).loss;
  let last = first;
  for (let i = 0; i < 400; i++) last = (await s.run(feeds, 0.01)).loss;
  assert.ok(last < 0.1 * first, `loss ${first} -> ${last}`);
  await s.release();
});

/**
 * One transformer encoder block (self-attention + GELU FFN, post-LN) with frozen random base
 * weights, LoRA (r=4) on all its linears and a trainable classifier on the mean-pooled output.
 */
function encoderBlockClassifier(g: E.Graph, hidden: number, heads: number, vocab: number) {
  const ids = g.input("input_ids", "int64", ["batch", "seq"]);
  const mask = g.input("attention_mask", "float32", ["batch", "seq"]);
  const labels = g.input("labels", "float32", ["batch", 1]);
  let seed = 100;
  const frozen = (name: string, shape: number[], scale: number) =>
    g.initializer(
      name,
      "float32",
      shape,
      Float32Array.from(rand(shape[0] * (shape[1] ?? 1), seed++, -scale, scale)),
    );
  const trainable: E.Tensor[] = [];
  const init = new Map<string, Float32Array>();
  const r = 4;
  const linear = (name: string, x: E.Tensor, din: number, dout: number) => {
    const w = frozen(`${name}.weight`, [dout, din], 1 / Math.sqrt(din));
    const a = g.param(`${name}.lora_A`, [r, din]);
    const b = g.param(`${name}.lora_B`, [dout, r]);
    trainable.push(a, b);
    init.set(a.name, Float32Array.from(rand(r * din, seed++, -1 / Math.sqrt(din), 1 / Math.sqrt(din))));
    init.set(b.name, new Float32Array(dout * r)); // B = 0: the adapter starts as a no-op
    const base = E.matmul(x, w, { transB: true });
    const lora = E.matmul(E.matmul(x, a, { transB: true }), b, { transB: true, alpha: 2 });
    return E.add(base, lora);
  };
  const emb = frozen("emb", [vocab, hidden], 1);
  const x = E.gather(emb, ids);
  const hd = hidden / heads;
  const splitHeads = (t: E.Tensor) => E.transpose(E.reshape(t, ["batch", "seq", heads, hd]), [0, 2, 1, 3]);
  const q = splitHeads(linear("q", x, hidden, hidden));
  const k = splitHeads(linear("k", x, hidden, hidden));
  const v = splitHeads(linear("v", x, hidden, hidden));
  // additive key mask: 0 for real tokens, -1e9 for padding
  const keyMask = E.unsqueeze(E.mul(E.rsub(1, mask), E.scalar(g, -1e9)), [1, 2]);
  const scores = E.add(E.matmul(q, k, { transB: true, alpha: 1 / Math.sqrt(hd) }), keyMask);
  const ctx = E.reshape(E.transpose(E.matmul(E.softmax(scores), v), [0, 2, 1, 3]), ["batch", "seq", hidden]);
  const ln = (name: string, t: E.Tensor) => E.layerNorm(t, onesInit(g, `${name}.weight`, hidden), null, 1e-5);
  const h1 = ln("ln1", E.add(x, linear("o", ctx, hidden, hidden)));
  const ff = linear("ff2", E.gelu(linear("ff1", h1, hidden, 2 * hidden)), 2 * hidden, hidden);
  const h2 = ln("ln2", E.add(h1, ff));
  const m3 = E.unsqueeze(mask, [2]);
  const pooled = E.div(E.reduceSum(E.mul(h2, m3), [1]), E.reduceSum(m3, [1]));
  const wc = g.param("classifier.weight", [1, hidden]);
  const bc = g.param("classifier.bias", [1]);
  trainable.push(wc, bc);
  init.set(wc.name, Float32Array.from(rand(hidden, seed++, -0.1, 0.1)));
  init.set(bc.name, new Float32Array(1));
  const logits = E.add(E.matmul(pooled, wc, { transB: true }), bc);
  const loss = E.bceWithLogits(logits, labels);
  return { loss, trainable, init };
}

function onesInit(g: E.Graph, name: string, n: number): E.Tensor {
  return g.initializer(`${name}.ones`, "float32", [n], new Float32Array(n).fill(1));
}

test("a transformer encoder block with LoRA on its linears (base frozen) learns a token task", async () => {
  const [hidden, heads, vocab, n, seqMax] = [16, 2, 12, 32, 8];
  const g = new E.Graph();
  const { loss, trainable, init } = encoderBlockClassifier(g, hidden, heads, vocab);
  g.output("loss", loss);
  const opt = E.adamw(g, E.grad(loss, trainable), { weightDecay: 0 });
  // Only LoRA factors and the classifier are parameters; every base weight is an initializer.
  assert.ok(trainable.every((t) => t.leaf === "param"));
  assert.ok(g.initializers.some((i) => i.tensor.name === "q.weight"));
  const s = await E.TrainSession.create(g, opt, init, { threads: 2 });
  // Label = does token 3 occur among the real tokens? Variable lengths with right padding (id 0).
  const ids: number[] = [];
  const mask: number[] = [];
  const labels: number[] = [];
  const r = rand(n * seqMax * 2, 5, 0, 1);
  for (let i = 0; i < n; i++) {
    const len = 3 + Math.floor(r[i] * (seqMax - 3));
    let has = 0;
    for (let t = 0; t < seqMax; t++) {
      const tok = t < len ? 1 + Math.floor(r[n + i * seqMax + t] * (vocab - 1)) : 0;
      if (tok === 3) has = 1;
      ids.push(tok);
      mask.push(t < len ? 1 : 0);
    }
    labels.push(has);
  }
  const feeds = {
    input_ids: E.tensor("int64", ids, [n, seqMax]),
    attention_mask: E.tensor("float32", mask, [n, seqMax]),
    labels: E.tensor("float32", labels, [n, 1]),
  };
  const first = (await s.run(feeds, 0.01)).loss;
  let last = first;
  let steps = 0;
  for (; steps < 300 && last > 0.1 * first; steps++) last = (await s.run(feeds, 0.01)).loss;
  console.log(`encoder block: loss ${first.toFixed(4)} -> ${last.toFixed(4)} in ${steps} steps`);
  assert.ok(last < 0.1 * first, `loss ${first} -> ${last}`);
  await s.release();
});
