// Runtime wrapper: external-data models, device errors, unused feeds.
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { test } from "node:test";
import * as E from "../../src/engine/index.js";
import { rand } from "./gradcheck.js";

function smallModel(): E.Graph {
  const g = new E.Graph();
  const x = g.input("x", "float32", ["batch", 64]);
  const w = g.initializer("w", "float32", [64, 32], Float32Array.from(rand(64 * 32, 1)));
  g.output("y", E.tanh(E.matmul(x, w)));
  return g;
}

test("weights written as ONNX external data give the same results as an in-memory model", async () => {
  const feeds = { x: E.tensor("float32", rand(3 * 64, 2), [3, 64]) };
  const inMemory = await E.Session.fromGraph(smallModel(), { threads: 1 });
  // A threshold of 0 bytes forces the external-data path used for models beyond 2 GB.
  const external = await E.Session.fromGraph(smallModel(), { threads: 1, externalDataThreshold: 0 });
  const a = (await inMemory.run(feeds)).y.data as Float32Array;
  const b = (await external.run(feeds)).y.data as Float32Array;
  assert.deepEqual(Array.from(b), Array.from(a));
});

test("device cuda: runs like the CPU where the CUDA provider works, else fails with a clear message", async () => {
  const feeds = { x: E.tensor("float32", rand(3 * 64, 4), [3, 64]) };
  const created = await E.Session.fromGraph(smallModel(), { device: "cuda" }).then(
    (s) => ({ session: s }),
    (err: Error) => ({ err }),
  );
  if ("err" in created) {
    // No provider library, no GPU or no driver: the error says how to get CUDA or to use the CPU.
    const { err } = created;
    assert.match(err.message, /CUDA execution provider is not available/);
    // The command it suggests runs onnxruntime-node's own install script, at a path that exists.
    const script = /ONNXRUNTIME_NODE_INSTALL=cuda12 node (\S+?),/.exec(err.message)?.[1];
    assert.ok(script !== undefined && existsSync(`${script}.js`), err.message);
    return;
  }
  const cpu = await E.Session.fromGraph(smallModel(), { threads: 1 });
  const want = (await cpu.run(feeds)).y.data as Float32Array;
  const got = (await created.session.run(feeds)).y.data as Float32Array;
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4, `y[${i}]`);
});

test("a missing input is named; inputs the model does not take are ignored", async () => {
  const s = await E.Session.fromGraph(smallModel(), { threads: 1 });
  await assert.rejects(s.run({}), /missing input "x"/);
  const out = await s.run({
    x: E.tensor("float32", rand(64, 3), [1, 64]),
    extra: E.tensor("float32", [1], [1]),
  });
  assert.deepEqual(out.y.dims, [1, 32]);
});

test("sessions sharing an external weights file store each array once", async () => {
  const w = Float32Array.from(rand(64 * 32, 5));
  const build = (act: (t: E.Tensor) => E.Tensor) => {
    const g = new E.Graph();
    const x = g.input("x", "float32", ["batch", 64]);
    g.output("y", act(E.matmul(x, g.initializer("w", "float32", [64, 32], w))));
    return g;
  };
  const shared = new E.SharedWeights();
  try {
    const a = await E.Session.fromGraph(build(E.tanh), { threads: 1, sharedWeights: shared });
    const b = await E.Session.fromGraph(build(E.sigmoid), { threads: 1, sharedWeights: shared });
    assert.equal(statSync(shared.store.path).size, w.byteLength);
    const x = rand(64, 6);
    const feeds = { x: E.tensor("float32", x, [1, 64]) };
    const ya = (await a.run(feeds)).y.data as Float32Array;
    const yb = (await b.run(feeds)).y.data as Float32Array;
    for (let j = 0; j < 32; j++) {
      let z = 0;
      for (let k = 0; k < 64; k++) z += x[k] * w[k * 32 + j];
      assert.ok(Math.abs(ya[j] - Math.tanh(z)) < 1e-5, `tanh ${j}`);
      assert.ok(Math.abs(yb[j] - 1 / (1 + Math.exp(-z))) < 1e-5, `sigmoid ${j}`);
    }
  } finally {
    shared.release();
  }
});
