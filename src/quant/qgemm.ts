// Prediction-only weight layout for onnxruntime's int8 QGEMM (the QGemm op of src/engine/ops.ts):
// W [n, k] ≈ q · scale[n] with q int8 per output channel, symmetric (zero point 0), the layout
// onnxruntime's own quantize_dynamic writes for per-channel int8 weights. On x86 with VNNI this
// runs MLAS' u8s8 kernels, which MatMulNBits (blockwise scales along k) cannot use for large
// batches. Two sources:
// - int8: the float weight quantized per channel (q = round(w / scale), scale = absmax / 127);
//   the file stores q + 128 as uint8 [n, k].
// - int4: MatMulNBits' blockwise int4 (src/quant/codecs.ts), kept as is in the file (same size);
//   the graph requantizes it per channel at session creation: q = round(w4 / scale) with
//   w4 = (nibble − 8) · blockScale and scale[n] = 8 · max blockScale / 127, so |q| ≤ 127 and
//   the extra rounding is at most 1/32 of the row's coarsest int4 step.

import { dequantizeInt4, quantizeInt8 } from "./codecs.js";
import type { QuantizedTensor } from "./weights.js";

/** QGemm's attributes: W [n, k]; for the int4 source, its MatMulNBits block size. */
export interface QGemmAttrs {
  source: "int8" | "int4";
  n: number;
  k: number;
  blockSize: number;
}

/** A weight in QGemm layout. */
export interface QGemmWeight {
  attrs: QGemmAttrs;
  /** int8: q + 128 [n, k]; int4: MatMulNBits codes [n, blocks, bs/2]. */
  codes: Uint8Array;
  codesShape: number[];
  /** int4 only: MatMulNBits block scales [n · blocks]. */
  blockScales?: Float32Array;
  /** Per output channel [n]. */
  scales: Float32Array;
}

/** W [n, k] quantized per output channel to int8. */
export function qgemmFromFloat(data: Float32Array, n: number, k: number): QGemmWeight {
  const q = quantizeInt8(data, n, k, k);
  const codes = new Uint8Array(n * k);
  for (let i = 0; i < codes.length; i++) codes[i] = (q.codes[i] as number) + 128;
  return { attrs: { source: "int8", n, k, blockSize: k }, codes, codesShape: [n, k], scales: q.scales };
}

/** A MatMulNBits int4 weight (quantizeWeight's int4 output) for QGemm, requantized at load. */
export function qgemmFromInt4(q: QuantizedTensor): QGemmWeight {
  const { n, k, blockSize: bs } = q.attrs;
  if (q.attrs.scheme !== "int4") throw new Error(`qgemmFromInt4: scheme ${q.attrs.scheme} is not int4`);
  const blocks = Math.ceil(k / bs);
  const scales = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    let m = 0;
    for (let b = 0; b < blocks; b++) m = Math.max(m, Math.abs(q.scales[r * blocks + b]));
    scales[r] = m === 0 ? 1 : Math.fround((8 * m) / 127);
  }
  return {
    attrs: { source: "int4", n, k, blockSize: bs },
    codes: q.codes,
    codesShape: q.codesShape,
    blockScales: q.scales,
    scales,
  };
}

/**
 * A blockwise int8 weight (quantizeWeight's int8: codes + 128 in blocks, a scale per block)
 * requantized per channel: q = round(code · blockScale / s), s = the row's largest block scale,
 * so |q| ≤ 127. For a loaded quantized base in prediction graphs (QGemm).
 */
export function qgemmFromInt8Blocks(q: QuantizedTensor): QGemmWeight {
  const { n, k, blockSize: bs } = q.attrs;
  if (q.attrs.scheme !== "int8") throw new Error(`qgemmFromInt8Blocks: scheme ${q.attrs.scheme} is not int8`);
  const blocks = Math.ceil(k / bs);
  const scales = new Float32Array(n);
  const codes = new Uint8Array(n * k);
  for (let r = 0; r < n; r++) {
    let m = 0;
    for (let b = 0; b < blocks; b++) m = Math.max(m, Math.abs(q.scales[r * blocks + b]));
    const s = m === 0 ? 1 : m;
    scales[r] = s;
    for (let c = 0; c < k; c++) {
      const b = Math.floor(c / bs);
      const w = Math.fround((q.codes[r * blocks * bs + c] - 128) * q.scales[r * blocks + b]);
      codes[r * k + c] = roundHalfEven(Math.fround(w / s)) + 128;
    }
  }
  return { attrs: { source: "int8", n, k, blockSize: k }, codes, codesShape: [n, k], scales };
}

/** Round half to even, as ONNX Round. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The int8 codes q [n, k] the kernel multiplies (for int4, as the graph requantizes them). */
export function qgemmCodes(w: QGemmWeight): Int8Array {
  const { n, k } = w.attrs;
  const q = new Int8Array(n * k);
  if (w.attrs.source === "int8") {
    for (let i = 0; i < q.length; i++) q[i] = w.codes[i] - 128;
    return q;
  }
  // The graph's float32 steps: (nibble − 8) · blockScale, then ÷ scale[n], then Round.
  const w4 = dequantizeInt4(w.codes, w.blockScales as Float32Array, n, k, w.attrs.blockSize);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < k; c++) q[r * k + c] = roundHalfEven(Math.fround(w4[r * k + c] / w.scales[r]));
  }
  return q;
}

/** The float32 W [n, k] = q · scale[n] that QGemm computes with. */
export function qgemmDequantize(w: QGemmWeight): Float32Array {
  const { n, k } = w.attrs;
  const q = qgemmCodes(w);
  const out = new Float32Array(n * k);
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) out[r * k + c] = q[r * k + c] * w.scales[r];
  return out;
}
