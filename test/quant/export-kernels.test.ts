// Exported quantized prediction on onnxruntime's int8 GEMM (the QGemm op, src/quant/qgemm.ts):
// - the op computes exactly what its ONNX definition says (DynamicQuantizeLinear of x, an integer
//   GEMM with the int8 weight codes, one float scale), checked against a plain-JS emulation,
//   which also pins the int4 → int8 requantization the graph does at session creation;
// - a whole exported model (LoRA merged, then quantized) run by plain onnxruntime-node is close
//   to toxlora's float32 model built from the dequantized weights, for each architecture; with
//   MatMulNBits at accuracy_level 0 (float32 activations) it equals it to 1e-4.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import * as ort from "onnxruntime-node";
import { Graph, qgemmMatmul, Session, type Tensor, tensor, toOnnx } from "../../src/engine/index.js";
import { readAdapter } from "../../src/io/peft.js";
import { buildClassifier, type LoadedCheckpoint, loadCheckpoint } from "../../src/models/registry.js";
import { exportOnnx } from "../../src/predict/export.js";
import {
  type QGemmAttrs,
  type QGemmWeight,
  qgemmCodes,
  qgemmDequantize,
  qgemmFromFloat,
  qgemmFromInt4,
  qgemmFromInt8Blocks,
} from "../../src/quant/qgemm.js";
import {
  dequantizeWeight,
  type QuantAttrs,
  type QuantizedTensor,
  type QuantizeOptions,
  quantizeWeight,
} from "../../src/quant/weights.js";
import {
  type Arch,
  assertClose,
  batchFeeds,
  fixtureInputs,
  maxAbsDiff,
  REFERENCE,
} from "../models/helpers.js";

function randoms(n: number, seed: number, scale = 1): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s / 2 ** 31 - 0.5) * 2 * scale;
  });
}

const roundHalfEven = (x: number) => {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/** ONNX DynamicQuantizeLinear + MatMulInteger + the scales, in plain JS: x [m, k] · (q · scale)ᵀ. */
function emulate(x: Float32Array, m: number, w: QGemmWeight): Float32Array {
  const { n, k } = w.attrs;
  let lo = 0;
  let hi = 0;
  for (const v of x) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const xs = Math.fround((hi - lo) / 255);
  const zp = Math.min(255, Math.max(0, roundHalfEven(-lo / xs)));
  const xq = Array.from(x, (v) => Math.min(255, Math.max(0, roundHalfEven(Math.fround(v / xs)) + zp)));
  const q = qgemmCodes(w);
  const y = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let c = 0; c < k; c++) acc += (xq[i * k + c] - zp) * q[j * k + c];
      y[i * n + j] = acc * Math.fround(xs * w.scales[j]);
    }
  }
  return y;
}

async function runQGemm(x: Float32Array, shape: number[], w: QGemmWeight): Promise<Float32Array> {
  const g = new Graph();
  const xin = g.input("x", "float32", shape);
  const codes = g.initializer("w.codes", "uint8", w.codesShape, w.codes);
  const scales = g.initializer("w.scales", "float32", [w.attrs.n], w.scales);
  const bs =
    w.blockScales && g.initializer("w.block_scales", "float32", [w.blockScales.length], w.blockScales);
  g.output("y", qgemmMatmul(xin, codes, scales, w.attrs, bs));
  const s = await Session.fromGraph(g, { threads: 1 });
  try {
    return (await s.run({ x: tensor("float32", x, shape) })).y.data as Float32Array;
  } finally {
    await s.release();
  }
}

describe("QGemm op", () => {
  const n = 24;
  const k = 40; // int4 blocks of 16: the last block is padded
  const m = 2 * 3;
  const wf = randoms(n * k, 11, 0.3);
  const x = randoms(m * k, 5, 2);
  const cases: [string, QGemmWeight][] = [
    ["int8 per channel", qgemmFromFloat(wf, n, k)],
    [
      "int4 requantized to int8",
      qgemmFromInt4(quantizeWeight("w", wf, n, k, { scheme: "int4", blockSize: 16 })),
    ],
  ];
  for (const [name, w] of cases) {
    it(`${name}: equals DynamicQuantizeLinear + integer GEMM + scales computed in JS`, async () => {
      const got = await runQGemm(x, [2, 3, k], w);
      const want = emulate(x, m, w);
      let scale = 0;
      for (const v of want) scale = Math.max(scale, Math.abs(v));
      // The integer sums are exact; only the final float32 scaling rounds.
      const d = maxAbsDiff(got, want);
      assert.ok(d <= 1e-5 * scale, `max |Δ| ${d} (largest |y| ${scale})`);
    });
  }
  it("onnxruntime folds the weight preparation and fuses the rest into DynamicQuantizeMatMul", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "toxlora-qgemm-"));
    try {
      for (const [name, w] of cases) {
        const g = new Graph();
        const xin = g.input("x", "float32", ["batch", k]);
        const codes = g.initializer("w.codes", "uint8", w.codesShape, w.codes);
        const scales = g.initializer("w.scales", "float32", [n], w.scales);
        const bs = w.blockScales && g.initializer("w.bs", "float32", [w.blockScales.length], w.blockScales);
        g.output("y", qgemmMatmul(xin, codes, scales, w.attrs, bs));
        const file = path.join(dir, `${name}.onnx`);
        const session = await ort.InferenceSession.create(toOnnx(g), {
          graphOptimizationLevel: "all",
          optimizedModelFilePath: file,
        });
        await session.release();
        const text = readFileSync(file).toString("latin1");
        assert.match(text, /DynamicQuantizeMatMul/, name);
        // Op types (node names such as "MatMulInteger_5" may survive the fusion).
        for (const op of ["MatMulInteger", "DynamicQuantizeLinear", "BitShift", "Round", "Transpose"]) {
          assert.doesNotMatch(text, new RegExp(`${op}(?![_A-Za-z0-9])`), `${name}: ${op} left in the graph`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("int4 requantization: codes within one int4 step, |q| ≤ 127, weights close to the int4 ones", () => {
    const q4 = quantizeWeight("w", wf, n, k, { scheme: "int4", blockSize: 16 });
    const w = qgemmFromInt4(q4);
    const q = qgemmCodes(w);
    const deq = qgemmDequantize(w);
    const blocks = Math.ceil(k / 16);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < k; c++) {
        assert.ok(Math.abs(q[r * k + c]) <= 127);
        // Requantizing onto the row's int8 grid moves a weight by at most half its step.
        const b = Math.floor(c / 16);
        const byte = q4.codes[(r * blocks + b) * 8 + Math.floor((c % 16) / 2)];
        const nibble = (byte >> ((c % 2) * 4)) & 15; // low nibble first
        const want = (nibble - 8) * q4.scales[r * blocks + b];
        assert.ok(Math.abs(deq[r * k + c] - want) <= w.scales[r] / 2 + 1e-7, `[${r}, ${c}]`);
      }
    }
  });
});

/** The float32 W each quantized node of a built graph multiplies by, by checkpoint key. */
function dequantizedWeights(g: Graph): Map<string, Float32Array> {
  const data = new Map(g.initializers.map((i) => [i.tensor, i.data]));
  const out = new Map<string, Float32Array>();
  for (const node of g.nodes) {
    const [, codes, ...rest] = node.inputs as Tensor[];
    const key = codes?.name.replace(/\.codes$/, "");
    if (node.op === "QGemm") {
      const scales = rest[rest.length - 1];
      const w: QGemmWeight = {
        attrs: node.attrs as unknown as QGemmAttrs,
        codes: data.get(codes) as Uint8Array,
        codesShape: codes.shape as number[],
        blockScales: rest.length === 2 ? (data.get(rest[0]) as Float32Array) : undefined,
        scales: data.get(scales) as Float32Array,
      };
      out.set(key, qgemmDequantize(w));
    } else if (node.op === "QMatMul") {
      const q: QuantizedTensor = {
        attrs: node.attrs as unknown as QuantAttrs,
        codes: data.get(codes) as Uint8Array,
        codesShape: codes.shape as number[],
        scales: data.get(rest[0]) as Float32Array,
      };
      out.set(key, dequantizeWeight(q));
    }
  }
  return out;
}

async function plainOrt(bytes: Uint8Array, arch: Arch): Promise<Float32Array> {
  const { input_ids, attention_mask } = batchFeeds(fixtureInputs(arch));
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: "all" });
  try {
    const out = await session.run({
      input_ids: new ort.Tensor("int64", input_ids.data as BigInt64Array, input_ids.dims),
      attention_mask: new ort.Tensor("int64", attention_mask.data as BigInt64Array, attention_mask.dims),
    });
    return out.logits.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** The fixture run exported (LoRA merged, then quantized); without `quant`, the float reference. */
async function exported(arch: Arch, ckpt: LoadedCheckpoint, quant?: QuantizeOptions) {
  const adapter = await readAdapter(path.join(REFERENCE, arch, "lora"));
  const g = new Graph();
  const m = buildClassifier(g, ckpt, {
    head: { kind: "multilabel", numLabels: 4 },
    merged: true,
    tokenTypeInput: false,
    ...(quant
      ? { adapter, quantizeMerged: quant }
      : // The float reference: its weights already merged and dequantized, the adapter's head only.
        { adapter: { ...adapter, lora: new Map(), tensors: new Map() }, lora: null }),
  });
  g.output("logits", m.logits);
  return { g, bytes: toOnnx(g) };
}

/** Logits of the exported model and of the float32 model on its merged, dequantized weights. */
async function againstDequantized(arch: Arch, quant: QuantizeOptions) {
  const ckpt = await loadCheckpoint(path.join(REFERENCE, arch));
  const q = await exported(arch, ckpt, quant);
  const deq = dequantizedWeights(q.g);
  assert.ok(deq.size >= 4 * ckpt.config.num_hidden_layers, `only ${deq.size} quantized matmuls`);
  const f = await exported(arch, await withWeights(arch, deq));
  return { got: await plainOrt(q.bytes, arch), want: await plainOrt(f.bytes, arch) };
}

for (const arch of ["bert", "llama", "modernbert"] as Arch[]) {
  describe(`${arch}: exported quantized model in plain onnxruntime-node`, () => {
    for (const scheme of ["int8", "int4"] as const) {
      it(`${scheme} qgemm: logits close to the float32 model on the merged, dequantized weights`, async () => {
        const { got, want } = await againstDequantized(arch, { scheme, kernel: "qgemm", blockSize: 16 });
        // The only difference left is the activations' 8-bit quantization (per tensor, 255 steps
        // of its range) at every linear layer: measured 0.03–0.13 on these fixtures (logits up to
        // 3; ModernBERT's and Llama's activations span wide ranges, so their steps are coarser).
        // Wiring errors are far larger: leaving out the merged LoRA delta moves them by 1.2–2.2.
        const d = maxAbsDiff(got, want);
        assert.ok(d > 0 && d < 0.3, `${scheme}: max |Δ logit| ${d}`);
      });
      it(`${scheme} matmulnbits (accuracy_level 0): logits equal them to 1e-4`, async () => {
        const quant: QuantizeOptions = { scheme, kernel: "matmulnbits", blockSize: 16, accuracyLevel: 0 };
        const { got, want } = await againstDequantized(arch, quant);
        assertClose("logits", got, want, 1e-4);
      });
    }
  });
}

/** A float32 checkpoint whose backbone weights in `deq` are replaced by those values. */
async function withWeights(arch: Arch, deq: Map<string, Float32Array>): Promise<LoadedCheckpoint> {
  const base = await loadCheckpoint(path.join(REFERENCE, arch));
  // Checkpoint keys are looked up with and without the backbone prefix ("bert.", "model.").
  const get = (key: string) => {
    const t = base.weights.get(key);
    const d = [...deq].find(([k]) => k === key || k.endsWith(`.${key}`))?.[1];
    return d && t ? { ...t, data: d } : t;
  };
  return { ...base, weights: { origin: base.weights.origin, get } };
}

for (const arch of ["bert", "llama", "modernbert"] as Arch[]) {
  describe(`${arch}: predict --quantize with the base on the int8 GEMM (baseKernel qgemm)`, () => {
    for (const scheme of ["int8", "int4"] as const) {
      it(`${scheme}: logits close to the float32 model on the requantized weights, LoRA beside them`, async () => {
        const adapter = await readAdapter(path.join(REFERENCE, arch, "lora"));
        const build = (ckpt: LoadedCheckpoint, baseKernel?: "qgemm") => {
          const g = new Graph();
          const m = buildClassifier(g, ckpt, {
            head: { kind: "multilabel", numLabels: 4 },
            adapter,
            merged: true,
            tokenTypeInput: false,
            baseKernel,
          });
          g.output("logits", m.logits);
          return g;
        };
        const quantized = await loadCheckpoint(path.join(REFERENCE, arch), {
          quantize: { scheme, blockSize: 16 },
          quantCacheDir: null,
        });
        const q = build(quantized, "qgemm");
        const deq = dequantizedWeights(q);
        assert.ok(
          q.nodes.filter((n) => n.op === "QGemm").length >= 4 * quantized.config.num_hidden_layers,
          "the base's matmuls are not on QGemm",
        );
        // The LoRA branch stays beside the quantized base; the reference merges it in float32.
        const f = build(await withWeights(arch, deq));
        const d = maxAbsDiff(await plainOrt(toOnnx(q), arch), await plainOrt(toOnnx(f), arch));
        // As for the qgemm export above: only the 8-bit activations differ.
        assert.ok(d > 0 && d < 0.3, `${scheme}: max |Δ logit| ${d}`);
      });
    }
  });
}

it("int8 blocks requantized per channel move each weight by at most half an int8 step", () => {
  const n = 8;
  const k = 48;
  const q = quantizeWeight("w", randoms(n * k, 3, 0.5), n, k, { scheme: "int8", blockSize: 16 });
  const w = qgemmFromInt8Blocks(q);
  const before = dequantizeWeight(q);
  const after = qgemmDequantize(w);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < k; c++) {
      const d = Math.abs(after[r * k + c] - before[r * k + c]);
      assert.ok(d <= w.scales[r] / 2 + 1e-7, `[${r}, ${c}]: ${d}`);
    }
  }
});

it("export: an int8 qgemm export takes no block size, and an unknown kernel is refused, before any work", async () => {
  const nowhere = path.join(tmpdir(), "toxlora-no-such-run");
  const out = path.join(nowhere, "model.onnx");
  await assert.rejects(
    exportOnnx(nowhere, out, { quantize: "int8", quantBlockSize: 64 }),
    /^Error: --quant-block-size: an int8 export with --quant-kernel qgemm is quantized per output channel/,
  );
  await assert.rejects(
    exportOnnx(nowhere, out, { quantize: "int4", quantKernel: "fast" as "qgemm" }),
    /--quant-kernel: unknown kernel "fast" \(expected one of qgemm, matmulnbits\)/,
  );
});
