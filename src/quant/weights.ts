// A quantized frozen weight as the graph stores it: codes and scales laid out for onnxruntime's
// fused kernels (MatMulBnb4 for NF4, MatMulNBits for int4/int8) — see QMatMul in
// src/engine/ops.ts. Which checkpoint tensors are quantized: every linear layer of the backbone
// (2-D `.weight` tensors); embeddings, norms, biases and classification heads stay float32, as
// in QLoRA.

import {
  type CompressedAbsmax,
  compressAbsmax,
  decompressAbsmax,
  dequantizeInt4,
  dequantizeInt8,
  dequantizeNf4,
  quantizeInt4,
  quantizeInt8,
  quantizeNf4,
} from "./codecs.js";

/** A quantized weight's layout (src/quant/codecs.ts): W [n, k] in blocks of blockSize. */
export interface QuantAttrs {
  scheme: "nf4" | "int4" | "int8";
  n: number;
  k: number;
  blockSize: number;
  /**
   * MatMulNBits accuracy_level: 0 = float32 compute, 4 = int8 activations (faster, coarser). Unset
   * for int8, the weights are dequantized per layer (DequantizeLinear) into float32's MatMul, which
   * is exact too and faster than MatMulNBits' 8-bit float32 path; an export that asks for
   * MatMulNBits sets it.
   */
  accuracyLevel?: number;
}

/** Weight quantization schemes; "none" keeps float32. */
export const QUANT_SCHEMES = ["none", "int8", "int4", "nf4"] as const;
export type QuantScheme = (typeof QUANT_SCHEMES)[number];

/** Default block sizes: bitsandbytes' 64 for NF4, MatMulNBits' customary 32 for int4/int8. */
export const DEFAULT_BLOCK_SIZE: Record<Exclude<QuantScheme, "none">, number> = {
  nf4: 64,
  int4: 32,
  int8: 32,
};

export interface QuantizeOptions {
  scheme: QuantScheme;
  /** Values per block (a power of two >= 16); default DEFAULT_BLOCK_SIZE[scheme]. */
  blockSize?: number;
  /** int4/int8: MatMulNBits accuracy_level (0 = float32 compute; 4 = int8 activations, faster). */
  accuracyLevel?: 0 | 4;
  /**
   * Prediction graphs only: "matmulnbits" (default) keeps float32 activations (int4 on MatMulNBits,
   * int8 dequantized per layer, see QuantAttrs.accuracyLevel; an export with this kernel writes
   * MatMulNBits for both); "qgemm" runs onnxruntime's int8 QGEMM on per-channel int8 weights
   * (src/quant/qgemm.ts), faster for batches on x86.
   */
  kernel?: "matmulnbits" | "qgemm";
  /**
   * nf4 only: quantize the per-block absmax values again as bitsandbytes' compress_statistics
   * (8-bit dynamic map, blocks of 256, see compressAbsmax). Default false.
   */
  doubleQuant?: boolean;
}

/** The quantization options every loader takes (train, loadModel, loadClassifier). */
export interface QuantLoadOptions {
  /** Quantize the frozen base's linear weights: "none" (default), "int8", "int4" or "nf4". */
  quantize?: QuantScheme;
  /** Values per quantization block (default 64 for nf4, 32 for int4/int8). */
  quantBlockSize?: number;
  /** Keep quantized weights in the on-disk cache (default true; false = --no-quant-cache). */
  quantCache?: boolean;
  /** nf4: quantize the absmax values too (bitsandbytes' double quantization; --double-quant). */
  doubleQuant?: boolean;
}

/** loadCheckpoint's options for a QuantLoadOptions. */
export function checkpointQuantOptions(o: QuantLoadOptions): {
  quantize?: QuantizeOptions;
  quantCacheDir?: null;
} {
  if (!o.quantize || o.quantize === "none") {
    if (o.doubleQuant) blockSizeOf({ scheme: "none", doubleQuant: true });
    return {};
  }
  const quantize: QuantizeOptions = { scheme: parseQuantScheme(o.quantize), blockSize: o.quantBlockSize };
  if (o.doubleQuant) quantize.doubleQuant = true;
  blockSizeOf(quantize);
  return o.quantCache === false ? { quantize, quantCacheDir: null } : { quantize };
}

/** The scheme named by a user, or a clear error listing the known ones. */
export function parseQuantScheme(value: string, where = "--quantize"): QuantScheme {
  if ((QUANT_SCHEMES as readonly string[]).includes(value)) return value as QuantScheme;
  throw new Error(
    `${where}: unknown quantization scheme "${value}" (expected one of ${QUANT_SCHEMES.join(", ")})`,
  );
}

/** The effective block size, checked (onnxruntime's kernels want a power of two of at least 16). */
export function blockSizeOf(opts: QuantizeOptions): number {
  if (opts.doubleQuant && opts.scheme !== "nf4") {
    throw new Error(
      `--double-quant: applies to nf4 only (the absmax values of NF4 blocks), not ${opts.scheme}`,
    );
  }
  if (opts.scheme === "none") throw new Error("blockSizeOf: scheme none has no blocks");
  const bs = opts.blockSize ?? DEFAULT_BLOCK_SIZE[opts.scheme];
  if (!Number.isInteger(bs) || bs < 16 || (bs & (bs - 1)) !== 0) {
    throw new Error(`--quant-block-size: ${bs} is not a power of two of at least 16`);
  }
  // MatMulBnb4 and MatMulNBits refuse larger blocks at session creation (export's qgemm does not use them).
  if (bs > MAX_KERNEL_BLOCK_SIZE && opts.kernel !== "qgemm") {
    const kernel = opts.scheme === "nf4" ? "MatMulBnb4" : "MatMulNBits";
    throw new Error(
      `--quant-block-size: ${bs} is larger than onnxruntime's ${kernel} takes (16 to ${MAX_KERNEL_BLOCK_SIZE})`,
    );
  }
  return bs;
}

/** Largest block onnxruntime's quantized matmul kernels (MatMulBnb4, MatMulNBits) accept. */
export const MAX_KERNEL_BLOCK_SIZE = 256;

/** Whether a checkpoint tensor is a backbone linear weight that a quantized base stores quantized. */
export function isQuantizable(key: string, shape: readonly number[]): boolean {
  return (
    shape.length === 2 &&
    key.endsWith(".weight") &&
    !/embed/i.test(key) &&
    !/(^|\.)(classifier|score|heads?|pooler)\./.test(key)
  );
}

/** A quantized W [n, k] in graph layout. */
export interface QuantizedTensor {
  attrs: QuantAttrs;
  /** nf4: [ceil(n·k/2)]; int4: [n, blocks, bs/2]; int8: [n, blocks, bs] (code + 128). */
  codes: Uint8Array;
  codesShape: number[];
  /** nf4: absmax per block of the flattened W; int4/int8: [n · blocks] per row block. */
  scales: Float32Array;
  /** nf4 with double quantization: the absmax values as stored; `scales` = their dequantized values. */
  doubleQuant?: CompressedAbsmax;
}

/** Where a quantized W [n, k] keeps what: attrs, codes shape and length, scales length. */
export function quantLayout(key: string, n: number, k: number, opts: QuantizeOptions) {
  const bs = blockSizeOf(opts);
  const attrs: QuantAttrs = { scheme: opts.scheme as QuantAttrs["scheme"], n, k, blockSize: bs };
  if (opts.accuracyLevel !== undefined) attrs.accuracyLevel = opts.accuracyLevel;
  const blocks = Math.ceil(k / bs);
  if (opts.scheme === "nf4") {
    if ((n * k) % bs !== 0) {
      throw new Error(
        `tensor "${key}" [${n}, ${k}] has ${n * k} values, not a multiple of the NF4 block size ${bs}; choose another --quant-block-size`,
      );
    }
    return { attrs, codesShape: [(n * k) / 2], codesLength: (n * k) / 2, scalesLength: (n * k) / bs };
  }
  const perBlock = opts.scheme === "int4" ? bs / 2 : bs;
  return {
    attrs,
    codesShape: [n, blocks, perBlock],
    codesLength: n * blocks * perBlock,
    scalesLength: n * blocks,
  };
}

/** Quantizes W [n, k] (`key` names it in errors). */
export function quantizeWeight(
  key: string,
  data: Float32Array,
  n: number,
  k: number,
  opts: QuantizeOptions,
): QuantizedTensor {
  const { attrs, codesShape } = quantLayout(key, n, k, opts);
  const bs = attrs.blockSize;
  if (opts.scheme === "nf4") {
    const q = quantizeNf4(data, bs);
    if (!opts.doubleQuant) return { attrs, codes: q.codes, codesShape, scales: q.absmax };
    const doubleQuant = compressAbsmax(q.absmax);
    return { attrs, codes: q.codes, codesShape, scales: decompressAbsmax(doubleQuant), doubleQuant };
  }
  if (opts.scheme === "int4") {
    const q = quantizeInt4(data, n, k, bs);
    return { attrs, codes: q.codes as Uint8Array, codesShape, scales: q.scales };
  }
  const q = quantizeInt8(data, n, k, bs);
  const blocks = Math.ceil(k / bs);
  // MatMulNBits (bits 8) reads unsigned codes with the implicit zero point 128, row blocks padded.
  const codes = new Uint8Array(n * blocks * bs).fill(128);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < k; c++) codes[r * blocks * bs + c] = (q.codes[r * k + c] as number) + 128;
  }
  return { attrs, codes, codesShape, scales: q.scales };
}

/** The float32 W [n, k] a quantized tensor stands for. */
export function dequantizeWeight(q: QuantizedTensor): Float32Array {
  const { scheme, n, k, blockSize: bs } = q.attrs;
  if (scheme === "nf4") return dequantizeNf4(q.codes, q.scales, bs, n * k);
  if (scheme === "int4") return dequantizeInt4(q.codes, q.scales, n, k, bs);
  const blocks = Math.ceil(k / bs);
  const signed = new Int8Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < k; c++) signed[r * k + c] = q.codes[r * blocks * bs + c] - 128;
  }
  return dequantizeInt8(signed, q.scales, n, k, bs);
}

/** Bytes a quantized tensor holds as stored (double quantization: absmax codes instead of absmax). */
export function quantizedBytes(q: QuantizedTensor): number {
  const dq = q.doubleQuant;
  return (
    q.codes.byteLength + (dq ? dq.absmaxCodes.byteLength + dq.absmax2.byteLength + 4 : q.scales.byteLength)
  );
}

/** "nf4 (block 64, double-quant)", "int8 (block 32)" or "none": for messages. */
export function describeQuantization(
  q: { scheme: string; blockSize?: number; doubleQuant?: boolean } | null,
): string {
  if (!q || q.scheme === "none") return "none";
  const bs = q.blockSize ?? DEFAULT_BLOCK_SIZE[q.scheme as Exclude<QuantScheme, "none">];
  return `${q.scheme} (block ${bs}${q.doubleQuant ? ", double-quant" : ""})`;
}
