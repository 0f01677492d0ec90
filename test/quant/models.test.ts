// A quantized frozen base, per scheme and architecture: logits of the quantized model (fused
// onnxruntime kernels forward for nf4/int4, int8 dequantized per layer; per-layer dequantization
// backward) equal those of the float32 model built from the dequantized weights, and so does every
// LoRA and head gradient. The per-layer dequantization stays in the graph onnxruntime runs (a
// folded float32 copy of the weights would undo the point of quantizing).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import * as ort from "onnxruntime-node";
import { Graph, grad, tensor, toOnnx } from "../../src/engine/index.js";
import { readAdapter } from "../../src/io/peft.js";
import { buildClassifier, type LoadedCheckpoint, loadCheckpoint } from "../../src/models/registry.js";
import type { QuantizeOptions } from "../../src/quant/weights.js";
import {
  type Arch,
  assertClose,
  assertGradClose,
  batchFeeds,
  fixtureInputs,
  fixtureLabels,
  REFERENCE,
  runGraph,
} from "../models/helpers.js";

const ARCHS: Arch[] = ["bert", "llama", "modernbert"];
// int4 in several blocks per row; int8 in one block wider than the rows (padded).
const SCHEMES: QuantizeOptions[] = [
  { scheme: "nf4" },
  { scheme: "nf4", doubleQuant: true },
  { scheme: "int4", blockSize: 16 },
  { scheme: "int8", blockSize: 64 },
];

/** The same checkpoint with every quantized tensor replaced by its dequantized float32 values. */
function dequantized(ckpt: LoadedCheckpoint): LoadedCheckpoint {
  return {
    ...ckpt,
    quantize: undefined,
    weights: { origin: ckpt.weights.origin, get: (k) => ckpt.weights.get(k) },
  };
}

async function run(arch: Arch, ckpt: LoadedCheckpoint, quantizedCount?: (n: number) => void) {
  const dir = path.join(REFERENCE, arch);
  const g = new Graph();
  const m = buildClassifier(g, ckpt, {
    head: { kind: "multilabel", numLabels: 4 },
    adapter: await readAdapter(path.join(dir, "lora")),
    training: true,
  });
  quantizedCount?.(g.nodes.filter((n) => n.op === "QMatMul").length);
  const loss = m.loss();
  g.output("loss", loss);
  g.output("logits", m.logits);
  for (const [p, gr] of grad(loss, m.params)) {
    assert.ok(gr, `${p.name} gets no gradient`);
    g.output(`grad:${p.name}`, gr);
  }
  const labels = fixtureLabels(arch);
  const feeds = { ...batchFeeds(fixtureInputs(arch)), labels: tensor("float32", labels.flat(), [3, 4]) };
  return { out: await runGraph(g, feeds, m.initial, m.params), params: m.params.map((p) => p.name) };
}

for (const arch of ARCHS) {
  describe(`${arch} with a quantized base`, () => {
    for (const quantize of SCHEMES) {
      it(`${quantize.scheme}${quantize.doubleQuant ? " double-quant" : ""}: logits and every LoRA/head gradient equal the dequantized float32 model's`, async () => {
        const ckpt = await loadCheckpoint(path.join(REFERENCE, arch), { quantize, quantCacheDir: null });
        let fused = 0;
        const q = await run(arch, ckpt, (n) => {
          fused = n;
        });
        const layers = ckpt.config.num_hidden_layers;
        assert.ok(fused >= 4 * layers, `only ${fused} quantized matmuls for ${layers} layers`);
        const f = await run(arch, dequantized(ckpt));
        assertClose("logits", q.out.get("logits")?.data ?? [], f.out.get("logits")?.data ?? [], 1e-4);
        assertClose("loss", q.out.get("loss")?.data ?? [], f.out.get("loss")?.data ?? [], 1e-4);
        assert.deepEqual(q.params, f.params);
        for (const p of q.params) {
          assertGradClose(p, q.out.get(`grad:${p}`)?.data ?? [], f.out.get(`grad:${p}`)?.data ?? []);
        }
      });
    }
  });
}

describe("int8 base in onnxruntime", () => {
  it("DequantizeLinear per layer, not folded into float32 constants, no MatMulNBits", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "toxlora-int8-"));
    try {
      const ckpt = await loadCheckpoint(path.join(REFERENCE, "llama"), {
        quantize: { scheme: "int8" },
        quantCacheDir: null,
      });
      const g = new Graph();
      const m = buildClassifier(g, ckpt, {
        head: { kind: "multilabel", numLabels: 4 },
        adapter: await readAdapter(path.join(REFERENCE, "llama", "lora")),
        training: true,
      });
      const loss = m.loss();
      g.output("loss", loss);
      for (const [p, gr] of grad(loss, m.params)) if (gr) g.output(`grad:${p.name}`, gr);
      const model = toOnnx(g);
      const file = path.join(dir, "optimized.onnx");
      const session = await ort.InferenceSession.create(model, {
        graphOptimizationLevel: "all",
        optimizedModelFilePath: file,
      });
      await session.release();
      const optimized = readFileSync(file);
      const text = optimized.toString("latin1");
      const dq = text.match(/DequantizeLinear(?![_A-Za-z0-9])/g)?.length ?? 0;
      const layers = ckpt.config.num_hidden_layers;
      // forward and backward of at least 4 projections per layer
      assert.ok(dq >= 8 * layers, `${dq} DequantizeLinear nodes for ${layers} layers`);
      assert.doesNotMatch(text, /MatMulNBits(?![_A-Za-z0-9])/);
      // Folded float32 weights would make the file about 4x the int8 codes it started from.
      assert.ok(
        optimized.length < 1.5 * model.length,
        `optimized ${optimized.length} B vs ${model.length} B`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
