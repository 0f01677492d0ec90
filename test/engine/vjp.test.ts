// Every VJP rule against central finite differences (float64 where onnxruntime has float64
// kernels for the op, else float32 with the tolerance stated in gradcheck.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import * as E from "../../src/engine/index.js";
import { gradCheck, type InputSpec, rand } from "./gradcheck.js";

type Case = {
  name: string;
  f: (...xs: E.Tensor[]) => E.Tensor;
  specs: InputSpec[];
  dtype?: E.DType;
  h?: number;
};

const pos = (n: number, seed: number) => rand(n, seed, 0.5, 2);
const GELU_POINTS = [-3, -1.5, -0.7, -0.2, 0.1, 0.6, 1.4, 2.5];

const cases: Case[] = [
  // elementwise binary, including broadcasting both ways
  { name: "Add", f: E.add, specs: [{ shape: [2, 3] }, { shape: [2, 3] }] },
  { name: "Add broadcast [2,3]+[3]", f: E.add, specs: [{ shape: [2, 3] }, { shape: [3] }] },
  { name: "Add broadcast [2,1]+[1,3]", f: E.add, specs: [{ shape: [2, 1] }, { shape: [1, 3] }] },
  { name: "Sub broadcast", f: E.sub, specs: [{ shape: [2, 1, 3] }, { shape: [4, 3] }] },
  { name: "Mul broadcast", f: E.mul, specs: [{ shape: [2, 3] }, { shape: [2, 1] }] },
  { name: "Div broadcast", f: E.div, specs: [{ shape: [3, 2] }, { shape: [2], values: pos(2, 5) }] },
  { name: "Pow 3", f: (x) => E.pow(x, 3), specs: [{ shape: [5] }] },
  { name: "Pow -0.5", f: (x) => E.pow(x, -0.5), specs: [{ shape: [5], values: pos(5, 1) }] },
  // elementwise unary
  { name: "Neg", f: E.neg, specs: [{ shape: [4] }] },
  { name: "Abs", f: E.abs, specs: [{ shape: [6] }] },
  { name: "Sqrt", f: E.sqrt, specs: [{ shape: [4], values: pos(4, 2) }] },
  { name: "Reciprocal", f: E.reciprocal, specs: [{ shape: [4], values: pos(4, 3) }] },
  { name: "Exp", f: E.exp, specs: [{ shape: [4] }] },
  { name: "Log", f: E.log, specs: [{ shape: [4], values: pos(4, 4) }] },
  { name: "Tanh", f: E.tanh, specs: [{ shape: [2, 3] }] },
  { name: "Erf", f: E.erf, specs: [{ shape: [2, 3] }], dtype: "float32" },
  { name: "Sigmoid", f: E.sigmoid, specs: [{ shape: [2, 3] }] },
  { name: "Relu", f: E.relu, specs: [{ shape: [8] }] },
  { name: "Gelu exact", f: (x) => E.gelu(x, "none"), specs: [{ shape: [2, 4] }], dtype: "float32" },
  // float64 at points where the tanh form's derivative differs from exact GELU's by far more than
  // the tolerance (see the test "tanh-GELU's gradient check can tell it from exact GELU").
  { name: "Gelu tanh", f: (x) => E.gelu(x, "tanh"), specs: [{ shape: [2, 4], values: GELU_POINTS }] },
  { name: "SiLU", f: E.silu, specs: [{ shape: [2, 4] }] },
  { name: "Identity", f: E.identity, specs: [{ shape: [3] }] },
  // masks and selection
  {
    name: "Where (broadcast)",
    f: (c, a, b) => E.where(E.greater(c, E.scalarLike(c, 0)), a, b),
    specs: [{ shape: [2, 3], diff: false }, { shape: [2, 3] }, { shape: [3] }],
  },
  {
    name: "Cast float64->float32->float64",
    f: (x) => E.cast(E.mul(E.cast(x, "float32"), E.scalar(x.graph, 2, "float32")), "float64"),
    specs: [{ shape: [3], values: [0.5, -0.25, 0.75] }],
    h: 2 ** -10, // linear function; a step exact in float32 so only the rule is measured
  },
  // matrix products: transposes, batches, a rank-2 weight shared across a batch, alpha
  { name: "MatMul", f: (a, b) => E.matmul(a, b), specs: [{ shape: [3, 4] }, { shape: [4, 2] }] },
  {
    name: "MatMul transA",
    f: (a, b) => E.matmul(a, b, { transA: true }),
    specs: [{ shape: [4, 3] }, { shape: [4, 2] }],
    dtype: "float32",
  },
  {
    name: "MatMul transB alpha",
    f: (a, b) => E.matmul(a, b, { transB: true, alpha: 0.5 }),
    specs: [{ shape: [3, 4] }, { shape: [2, 4] }],
    dtype: "float32",
  },
  {
    name: "MatMul transA transB",
    f: (a, b) => E.matmul(a, b, { transA: true, transB: true }),
    specs: [{ shape: [4, 3] }, { shape: [2, 4] }],
    dtype: "float32",
  },
  {
    name: "MatMul batched",
    f: (a, b) => E.matmul(a, b),
    specs: [{ shape: [2, 3, 4] }, { shape: [2, 4, 2] }],
  },
  {
    name: "MatMul batch x shared weight",
    f: (a, b) => E.matmul(a, b),
    specs: [{ shape: [2, 3, 4] }, { shape: [4, 5] }],
  },
  {
    name: "MatMul batch x shared weight transB",
    f: (a, b) => E.matmul(a, b, { transB: true }),
    specs: [{ shape: [2, 3, 4] }, { shape: [5, 4] }],
    dtype: "float32",
  },
  {
    name: "MatMul float64 transposed operands",
    f: (a, b) => E.matmul(a, b, { transA: true, transB: true, alpha: 2 }),
    specs: [{ shape: [2, 4, 3] }, { shape: [2, 2, 4] }],
  },
  {
    name: "MatMul broadcast batch [2,1,3,4]x[3,4,2]",
    f: (a, b) => E.matmul(a, b),
    specs: [{ shape: [2, 1, 3, 4] }, { shape: [3, 4, 2] }],
  },
  // normalisation and softmax
  { name: "Softmax", f: (x) => E.softmax(x, -1), specs: [{ shape: [2, 5] }] },
  { name: "Softmax axis 0", f: (x) => E.softmax(x, 0), specs: [{ shape: [3, 2] }] },
  {
    name: "LayerNorm with bias",
    f: (x, w, b) => E.layerNorm(x, w, b, 1e-5),
    specs: [{ shape: [2, 3, 4] }, { shape: [4] }, { shape: [4] }],
    dtype: "float32",
  },
  {
    name: "LayerNorm without bias",
    f: (x, w) => E.layerNorm(x, w, null, 1e-12),
    specs: [{ shape: [3, 5] }, { shape: [5] }],
    dtype: "float32",
  },
  { name: "RMSNorm", f: (x, w) => E.rmsNorm(x, w, 1e-6), specs: [{ shape: [2, 3, 4] }, { shape: [4] }] },
  // reductions
  { name: "ReduceSum keepdims", f: (x) => E.reduceSum(x, [1], true), specs: [{ shape: [2, 3, 2] }] },
  { name: "ReduceSum", f: (x) => E.reduceSum(x, [0, 2]), specs: [{ shape: [2, 3, 2] }] },
  { name: "ReduceMean", f: (x) => E.reduceMean(x, [-1]), specs: [{ shape: [2, 3] }] },
  { name: "ReduceMax", f: (x) => E.reduceMax(x, [1]), specs: [{ shape: [3, 4] }] },
  // shapes
  { name: "Reshape", f: (x) => E.reshape(x, [3, 2]), specs: [{ shape: [2, 3] }] },
  { name: "Reshape -1", f: (x) => E.reshape(x, [-1, 4]), specs: [{ shape: [2, 2, 4] }] },
  { name: "Transpose", f: (x) => E.transpose(x, [2, 0, 1]), specs: [{ shape: [2, 3, 4] }] },
  { name: "Concat", f: (a, b) => E.concat([a, b], 1), specs: [{ shape: [2, 2] }, { shape: [2, 3] }] },
  {
    name: "Split (one part unused)",
    f: (x) => E.split(x, -1, [1, 2, 1])[1],
    specs: [{ shape: [2, 4] }],
  },
  {
    name: "Split (parts recombined)",
    f: (x) => {
      const [a, b] = E.split(x, 0, [2, 1]);
      return E.mul(E.reduceSum(a, [0], true), b);
    },
    specs: [{ shape: [3, 2] }],
  },
  { name: "Slice", f: (x) => E.slice(x, [1], [3], [1]), specs: [{ shape: [2, 4] }] },
  {
    name: "Slice to end",
    f: (x) => E.slice(x, [1, 2], [E.TO_END, E.TO_END], [0, 1]),
    specs: [{ shape: [3, 4] }],
  },
  { name: "Unsqueeze", f: (x) => E.unsqueeze(x, [0, 2]), specs: [{ shape: [2, 3] }] },
  { name: "Squeeze", f: (x) => E.squeeze(x, [1]), specs: [{ shape: [2, 1, 3] }] },
  { name: "Expand", f: (x) => E.expand(x, [2, 3, 4]), specs: [{ shape: [3, 1] }] },
  // gather (embedding lookup with repeated indices) and its scatter-add gradient
  {
    name: "Gather rows",
    f: (t, i) => E.gather(t, i),
    specs: [{ shape: [5, 3] }, { shape: [2, 3], values: [0, 4, 4, 1, 0, 2], diff: false, dtype: "int64" }],
  },
  {
    name: "Gather rows, int32 indices",
    f: (t, i) => E.gather(t, i),
    specs: [{ shape: [5, 3] }, { shape: [2, 3], values: [0, 4, 4, 1, 0, 2], diff: false, dtype: "int32" }],
  },
  // losses
  {
    name: "BCEWithLogits (incl. logit exactly 0)",
    f: (x, y) => E.bceWithLogits(x, y),
    specs: [
      { shape: [2, 3], values: [0, 1.5, -2, 0.3, -0.7, 4] },
      { shape: [2, 3], values: [1, 0, 1, 0, 1, 1], diff: false },
    ],
  },
  {
    name: "BCEWithLogits pos_weight",
    f: (x, y, w) => E.bceWithLogits(x, y, w),
    specs: [
      { shape: [2, 3] },
      { shape: [2, 3], values: [1, 0, 1, 0, 1, 1], diff: false },
      { shape: [3], values: [2, 0.5, 3], diff: false },
    ],
  },
  {
    name: "SoftmaxCrossEntropy",
    f: (x, y) => E.softmaxCrossEntropy(x, y),
    specs: [{ shape: [4, 3] }, { shape: [4], values: [0, 2, 1, 2], diff: false, dtype: "int64" }],
  },
];

for (const c of cases) {
  test(`VJP ${c.name} matches finite differences (${c.dtype ?? "float64"})`, async () => {
    const { worst, detail } = await gradCheck(c.f, c.specs, { dtype: c.dtype, h: c.h });
    assert.ok(worst <= 1, `${c.name}: ${detail} (error ratio ${worst.toFixed(2)})`);
  });
}

test("Dropout: gradient is the kept mask scaled by 1/(1-p), same mask as the forward", async () => {
  const g = new E.Graph();
  const x = g.param("x", [1000]);
  const r = E.constant(g, rand(1000, 7), [1000]);
  const y = E.dropout(x, 0.25);
  const loss = E.sumAll(E.mul(y, r));
  g.output("y", y);
  const gx = E.grad(loss, [x]).get(x);
  assert.ok(gx);
  g.output("gx", gx);
  const s = await E.Session.fromGraph(g, { threads: 1 });
  const xv = Float32Array.from(rand(1000, 3, 0.5, 1.5));
  const key = E.dropoutKey(42, 7);
  const out = await s.run({
    x: E.tensor("float32", xv, [1000]),
    dropout_key: E.tensor("int64", BigInt64Array.of(key), []),
  });
  const yv = out.y.data as Float32Array;
  const gv = out.gx.data as Float32Array;
  const rv = rand(1000, 7);
  let dropped = 0;
  for (let i = 0; i < 1000; i++) {
    const kept = yv[i] !== 0;
    // The in-graph squares generator agrees bit for bit with the BigInt reference.
    assert.equal(kept, E.dropoutKeeps(key, 0, i, 0.25), `mask ${i}`);
    if (!kept) dropped++;
    const expectG = kept ? rv[i] / 0.75 : 0;
    const expectY = kept ? xv[i] / 0.75 : 0;
    assert.ok(Math.abs(gv[i] - expectG) < 1e-5, `grad ${i}`);
    assert.ok(Math.abs(yv[i] - expectY) < 1e-5, `value ${i}`);
  }
  assert.ok(dropped > 200 && dropped < 300, `dropped ${dropped} of 1000 at p=0.25`);
  // Same key, same mask in a fresh session; another key, another mask.
  const s2 = await E.Session.fromGraph(g, { threads: 1 });
  const again = await s2.run({
    x: E.tensor("float32", xv, [1000]),
    dropout_key: E.tensor("int64", BigInt64Array.of(key), []),
  });
  assert.deepEqual(Array.from(again.y.data as Float32Array), Array.from(yv));
  const other = await s2.run({
    x: E.tensor("float32", xv, [1000]),
    dropout_key: E.tensor("int64", BigInt64Array.of(E.dropoutKey(42, 8)), []),
  });
  assert.notDeepEqual(Array.from(other.y.data as Float32Array), Array.from(yv));
});

test("Dropout: two dropouts of one graph draw different masks from one key", async () => {
  const g = new E.Graph();
  const x = g.input("x", "float32", [4096]);
  g.output("a", E.dropout(x, 0.5));
  g.output("b", E.dropout(x, 0.5));
  const s = await E.Session.fromGraph(g, { threads: 1 });
  const out = await s.run({
    x: E.tensor("float32", new Float32Array(4096).fill(1), [4096]),
    dropout_key: E.tensor("int64", BigInt64Array.of(E.dropoutKey(1)), []),
  });
  const a = out.a.data as Float32Array;
  const b = out.b.data as Float32Array;
  let same = 0;
  for (let i = 0; i < 4096; i++) if ((a[i] === 0) === (b[i] === 0)) same++;
  // Independent masks at p = 0.5 agree on about half the elements.
  assert.ok(same > 1800 && same < 2300, `masks agree on ${same} of 4096`);
});

test("symbolic dims: one graph serves several batch and sequence sizes", async () => {
  const g = new E.Graph();
  const x = g.input("x", "float32", ["batch", "seq", 4]);
  const w = g.param("w", [4, 3]);
  const flat = E.reshape(x, [-1, 4]);
  assert.deepEqual(flat.shape, ["batch*seq", 4]);
  const y = E.reshape(E.matmul(flat, w), ["batch", "seq", 3]);
  const loss = E.meanAll(E.mul(y, y));
  g.output("loss", loss);
  const gw = E.grad(loss, [w]).get(w);
  assert.ok(gw);
  g.output("gw", gw);
  const s = await E.Session.fromGraph(g, { threads: 1 });
  for (const [b, t] of [
    [1, 1],
    [2, 5],
    [3, 2],
  ]) {
    const xv = Float32Array.from(rand(b * t * 4, b + t));
    const wv = Float32Array.from(rand(12, 1));
    const out = await s.run({ x: E.tensor("float32", xv, [b, t, 4]), w: E.tensor("float32", wv, [4, 3]) });
    // reference in plain JS
    let loss2 = 0;
    const gw2 = new Float64Array(12);
    for (let r = 0; r < b * t; r++) {
      for (let j = 0; j < 3; j++) {
        let acc = 0;
        for (let k = 0; k < 4; k++) acc += xv[r * 4 + k] * wv[k * 3 + j];
        loss2 += acc * acc;
        for (let k = 0; k < 4; k++) gw2[k * 3 + j] += (2 * acc * xv[r * 4 + k]) / (b * t * 3);
      }
    }
    loss2 /= b * t * 3;
    assert.ok(Math.abs(Number(out.loss.data[0]) - loss2) < 1e-5);
    (out.gw.data as Float32Array).forEach((v, i) => {
      assert.ok(Math.abs(v - gw2[i]) < 1e-5);
    });
  }
});

test("shape errors are thrown at build time and name the op and the shapes", () => {
  const g = new E.Graph();
  const a = g.input("a", "float32", ["batch", 4]);
  const b = g.param("b", [3, 2]);
  assert.throws(() => E.matmul(a, b), /MatMul: inner dimensions differ \(4 vs 3\).*a\[batch, 4\].*b\[3, 2\]/);
  assert.throws(() => E.add(a, g.param("c", [5])), /Add: shapes do not broadcast.*\(4 vs 5\)/);
  assert.throws(
    () => E.reshape(g.param("d", [2, 3]), [4, 2]),
    /Reshape: cannot reshape \[2, 3\] to \[4, 2\]/,
  );
  assert.throws(() => E.transpose(a, [0, 0]), /Transpose: perm \[0,0\]/);
  assert.throws(() => E.add(a, g.input("e", "float64", [4])), /Add: dtypes differ/);
});

test("frozen weights get no gradient and no backward matmul", () => {
  const g = new E.Graph();
  const x = g.input("x", "float32", ["batch", 4]);
  const w1 = g.initializer("w1", "float32", [4, 4], new Float32Array(16));
  const w2 = g.initializer("w2", "float32", [4, 4], new Float32Array(16));
  const a = g.param("a", [4, 2]);
  const h = E.matmul(E.tanh(E.matmul(x, w1)), w2); // below the LoRA branch: no backward needed
  const y = E.add(h, E.matmul(E.matmul(h, a), E.transpose(a, [1, 0])));
  const loss = E.meanAll(y);
  const before = g.nodes.length;
  E.grad(loss, [a]);
  const backward = g.nodes.slice(before);
  const matmuls = backward.filter((n) => n.op === "MatMul");
  // y = h + (h a) a^T: d/du = g a, d/da^T = u^T g, d/da (from u = h a) = h^T du: three matmuls,
  // and nothing touches w1, w2, tanh or x.
  assert.ok(matmuls.every((n) => !n.inputs.some((t) => t === w1 || t === w2)));
  assert.ok(!backward.some((n) => n.op === "Tanh"));
  assert.equal(matmuls.length, 3, backward.map((n) => n.op).join(" "));
});

/** erf to ~1e-15 (Maclaurin series; |x| <= 3 here). */
function erf(x: number): number {
  let sum = 0;
  let term = x;
  for (let n = 0; n < 200; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

test("tanh-GELU's gradient check can tell it from exact GELU", () => {
  // The float64 check above allows |error| <= 1e-7 + 1e-5·|g|; at its points the derivatives of
  // the two GELUs differ by far more, so a rule computing the other one would fail it.
  const c = Math.sqrt(2 / Math.PI);
  const dTanh = (x: number) => {
    const t = Math.tanh(c * (x + 0.044715 * x ** 3));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x);
  };
  const dExact = (x: number) =>
    0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp((-x * x) / 2)) / Math.sqrt(2 * Math.PI);
  const worst = Math.max(
    ...GELU_POINTS.map((x) => Math.abs(dTanh(x) - dExact(x)) / (1e-7 + 1e-5 * Math.abs(dExact(x)))),
  );
  assert.ok(worst > 10, `the derivatives differ by only ${worst}× the tolerance`);
});

test("ReduceMax: tied maxima share the gradient equally (as torch.amax)", async () => {
  const g = new E.Graph();
  const x = g.param("x", [2, 4], "float64");
  const r = E.constant(g, [2, 3], [2], "float64");
  const loss = E.sumAll(E.mul(E.reduceMax(x, [1]), r));
  const gx = E.grad(loss, [x]).get(x);
  assert.ok(gx);
  g.output("gx", gx);
  const s = await E.Session.fromGraph(g, { threads: 1 });
  const out = await s.run({ x: E.tensor("float64", [1, 3, 3, 0, 5, 5, 5, -1], [2, 4]) });
  assert.deepEqual(Array.from(out.gx.data as Float64Array), [0, 1, 1, 0, 1, 1, 1, 0]);
});

test("grad() refuses a path from a parameter to the loss through an op without a gradient rule", () => {
  const g = new E.Graph();
  const p = g.param("p", [4]);
  const loss = E.sumAll(E.mul(E.cumsum(E.tanh(p), 0), E.constant(g, [1, 2, 3, 4], [4])));
  assert.throws(() => E.grad(loss, [p]), /op CumSum .*has no gradient rule.*depends on a parameter/);
  // A parameter reaching the loss only through a piecewise-constant op gets no gradient, no error.
  const q = g.param("q", [4]);
  const l2 = E.sumAll(E.mul(E.sign(q), q));
  assert.ok(E.grad(l2, [q]).get(q));
});
