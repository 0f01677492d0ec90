// Blockwise weight codecs for a quantized frozen base (QLoRA-style), one pair of functions per
// scheme. All work on a row-major float32 array; the graph side (src/quant/graph.ts) turns the
// stored bytes back into float32 inside onnxruntime.
//
// - NF4 as bitsandbytes stores it: blocks of `blockSize` consecutive values of the flattened
//   tensor, a float32 absmax per block, each value/absmax mapped to the nearest of the 16
//   NormalFloat levels, two codes per byte with the FIRST value in the HIGH nibble.
// - int4 in onnxruntime's MatMulNBits layout: per output row, blocks of `blockSize` input values,
//   symmetric with the implicit zero point 8 (q = round(x / scale) + 8, scale = the block's
//   largest-magnitude value / -8, as onnxruntime's own quantizer), two codes per byte with the
//   FIRST value in the LOW nibble; a partial last block is padded with code 8 (= 0.0).
// - int8: per output row, blocks of `blockSize` input values (blockSize = in_features gives
//   per-channel), symmetric: q = round(x / scale) in [-127, 127], scale = absmax / 127.

/** The 16 NF4 levels (QLoRA, Dettmers et al. 2023), as bitsandbytes tabulates them in float32. */
export const NF4_LEVELS = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

/** Decision thresholds: midpoints between consecutive levels (bitsandbytes' quantize tree). */
const NF4_MIDPOINTS = Float32Array.from({ length: 15 }, (_, i) => (NF4_LEVELS[i] + NF4_LEVELS[i + 1]) / 2);

/** NF4 code of a normalised value in [-1, 1] (NaN, from a zero block, maps to the level 0.0). */
function nf4Code(v: number): number {
  if (Number.isNaN(v)) return 7;
  let c = 0;
  while (c < 15 && v > NF4_MIDPOINTS[c]) c++;
  return c;
}

function checkBlockSize(blockSize: number, what: string): void {
  if (!Number.isInteger(blockSize) || blockSize < 2 || blockSize % 2 !== 0) {
    throw new Error(`${what}: block size must be an even integer >= 2, got ${blockSize}`);
  }
}

export interface Nf4Quantized {
  /** Packed codes, two per byte, first value in the high nibble: ceil(n / 2) bytes. */
  codes: Uint8Array;
  /** float32 absmax of each block of `blockSize` values: ceil(n / blockSize) entries. */
  absmax: Float32Array;
}

/** NF4-quantizes a row-major tensor in blocks of `blockSize` values (bitsandbytes' layout). */
export function quantizeNf4(data: Float32Array, blockSize = 64): Nf4Quantized {
  checkBlockSize(blockSize, "quantizeNf4");
  const n = data.length;
  const blocks = Math.ceil(n / blockSize);
  const codes = new Uint8Array(Math.ceil(n / 2));
  const absmax = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const start = b * blockSize;
    const end = Math.min(n, start + blockSize);
    let m = 0;
    for (let i = start; i < end; i++) m = Math.max(m, Math.abs(data[i]));
    absmax[b] = m;
    const scale = blockScaler(m, end - start === blockSize);
    for (let i = start; i < end; i++) {
      const c = nf4Code(scale(data[i]));
      codes[i >> 1] |= i & 1 ? c : c << 4;
    }
  }
  return { codes, absmax };
}

/**
 * x ↦ x / absmax in float32 as bitsandbytes computes it (backends/default/ops.py): a whole block
 * multiplies by the float32 reciprocal 1 / max(absmax, 1e-38), a partial last block divides;
 * clamped to [-1, 1]. (The two differ in the last bit for a few values, which can change a code.)
 */
function blockScaler(absmax: number, whole: boolean): (x: number) => number {
  const m = Math.fround(Math.max(absmax, TINY));
  const inv = Math.fround(1 / m);
  return whole
    ? (x) => Math.min(1, Math.max(-1, Math.fround(x * inv)))
    : (x) => Math.min(1, Math.max(-1, Math.fround(x / m)));
}

/** torch's clamp(min=1e-38) on a float32 absmax. */
const TINY = Math.fround(1e-38);

/** Inverse of quantizeNf4: level[code] · absmax (`length` defaults to two values per byte). */
export function dequantizeNf4(
  codes: Uint8Array,
  absmax: Float32Array,
  blockSize = 64,
  length = codes.length * 2,
): Float32Array {
  checkBlockSize(blockSize, "dequantizeNf4");
  if (Math.ceil(length / 2) > codes.length || Math.ceil(length / blockSize) > absmax.length) {
    throw new Error(
      `dequantizeNf4: ${codes.length} code bytes and ${absmax.length} absmax values cannot hold ${length} values in blocks of ${blockSize}`,
    );
  }
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const byte = codes[i >> 1];
    const c = i & 1 ? byte & 15 : byte >> 4;
    out[i] = NF4_LEVELS[c] * absmax[Math.floor(i / blockSize)];
  }
  return out;
}

/**
 * bitsandbytes' signed dynamic 8-bit map (`create_dynamic_map(signed=True)`), the code of its
 * double quantization: 256 sorted float32 values, ±(10^e · fraction) for e = -6..0, then 0 and 1.
 * Tabulated as torch (1.13, CPU) computes it: its float32 linspace rounds differently from a
 * plain re-computation in 44 entries. Positive half here; the negative half is its mirror.
 */
const DYNAMIC_POSITIVE = [
  5.5000004e-7, 3.2500002e-6, 7.75e-6, 2.1249998e-5, 4.375e-5, 6.625e-5, 8.875e-5, 0.00015625001,
  0.00026875004, 0.00038125002, 0.00049375003, 0.0006062501, 0.00071875006, 0.00083125, 0.0009437501,
  0.0012812499, 0.00184375, 0.00240625, 0.00296875, 0.0035312497, 0.00409375, 0.0046562497, 0.0052187503,
  0.00578125, 0.00634375, 0.00690625, 0.00746875, 0.00803125, 0.00859375, 0.009156249, 0.00971875, 0.01140625,
  0.01421875, 0.01703125, 0.01984375, 0.02265625, 0.02546875, 0.028281247, 0.03109375, 0.033906247,
  0.036718752, 0.03953125, 0.042343747, 0.04515625, 0.04796875, 0.05078125, 0.05359375, 0.05640625,
  0.059218753, 0.062031247, 0.06484375, 0.067656256, 0.070468746, 0.07328125, 0.07609375, 0.07890625,
  0.08171874, 0.08453125, 0.08734375, 0.09015625, 0.092968754, 0.095781244, 0.09859375, 0.107031256,
  0.12109375, 0.13515624, 0.14921875, 0.16328125, 0.17734374, 0.19140625, 0.20546874, 0.21953125, 0.23359376,
  0.24765626, 0.26171875, 0.27578127, 0.28984374, 0.30390626, 0.31796873, 0.33203125, 0.3460937, 0.36015624,
  0.37421876, 0.38828123, 0.40234375, 0.4164062, 0.43046874, 0.44453126, 0.45859373, 0.47265625, 0.48671877,
  0.50078124, 0.51484376, 0.5289062, 0.54296875, 0.5570313, 0.5710938, 0.58515626, 0.5992187, 0.61328125,
  0.6273438, 0.64140624, 0.65546876, 0.6695313, 0.68359375, 0.6976563, 0.7117188, 0.72578126, 0.7398438,
  0.75390625, 0.7679688, 0.78203124, 0.7960937, 0.8101562, 0.82421875, 0.8382812, 0.85234374, 0.8664062,
  0.8804687, 0.89453125, 0.9085938, 0.92265624, 0.9367187, 0.9507812, 0.96484375, 0.9789062, 0.99296874,
];
export const DYNAMIC_MAP_8BIT = Float32Array.from([
  ...DYNAMIC_POSITIVE.map((v) => -v).reverse(),
  0,
  ...DYNAMIC_POSITIVE,
  1,
]);

/** Midpoints of a sorted code map, in float32 (bitsandbytes' quantization thresholds). */
function midpoints(code: Float32Array): Float32Array {
  return Float32Array.from({ length: code.length - 1 }, (_, i) => Math.fround(code[i] + code[i + 1]) / 2);
}
const DYNAMIC_MIDPOINTS = midpoints(DYNAMIC_MAP_8BIT);

/** torch.bucketize(v, bounds): the number of bounds strictly below v (a tie takes the lower code). */
function bucketize(v: number, bounds: Float32Array): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (bounds[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface Blockwise8Quantized {
  /** One code (an index into the map) per value. */
  codes: Uint8Array;
  /** float32 absmax of each block. */
  absmax: Float32Array;
}

/** bitsandbytes' quantize_blockwise: each value/absmax to the nearest entry of `code` (sorted). */
export function quantizeBlockwise8(
  data: Float32Array,
  blockSize = 256,
  code: Float32Array = DYNAMIC_MAP_8BIT,
): Blockwise8Quantized {
  checkBlockSize(blockSize, "quantizeBlockwise8");
  const bounds = code === DYNAMIC_MAP_8BIT ? DYNAMIC_MIDPOINTS : midpoints(code);
  const n = data.length;
  const codes = new Uint8Array(n);
  const absmax = new Float32Array(Math.ceil(n / blockSize));
  for (let b = 0; b < absmax.length; b++) {
    const start = b * blockSize;
    const end = Math.min(n, start + blockSize);
    let m = 0;
    for (let i = start; i < end; i++) m = Math.max(m, Math.abs(data[i]));
    absmax[b] = m;
    const scale = blockScaler(m, end - start === blockSize);
    for (let i = start; i < end; i++) codes[i] = bucketize(scale(data[i]), bounds);
  }
  return { codes, absmax };
}

/** Inverse of quantizeBlockwise8: code[q] · absmax, in float32. */
export function dequantizeBlockwise8(
  codes: Uint8Array,
  absmax: Float32Array,
  blockSize = 256,
  code: Float32Array = DYNAMIC_MAP_8BIT,
): Float32Array {
  checkBlockSize(blockSize, "dequantizeBlockwise8");
  if (Math.ceil(codes.length / blockSize) > absmax.length) {
    throw new Error(
      `dequantizeBlockwise8: ${absmax.length} absmax values cannot scale ${codes.length} codes in blocks of ${blockSize}`,
    );
  }
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = code[codes[i]] * absmax[Math.floor(i / blockSize)];
  return out;
}

/** Values per block when the NF4 absmax values are quantized again (bitsandbytes' 256). */
export const DOUBLE_QUANT_BLOCK_SIZE = 256;

/**
 * NF4 absmax values quantized again, as bitsandbytes' `compress_statistics=True` stores them:
 * `offset` = their float32 mean; absmax - offset in blocks of 256 with the signed dynamic 8-bit
 * map: one code byte per NF4 block and a float32 absmax per 256 of them.
 */
export interface CompressedAbsmax {
  /** One byte per NF4 block: index into DYNAMIC_MAP_8BIT. */
  absmaxCodes: Uint8Array;
  /** float32 absmax of each block of 256 (absmax - offset) values. */
  absmax2: Float32Array;
  /** float32 mean of the absmax values. */
  offset: number;
}

/**
 * The float32 mean of float32 values: the exact mean rounded once. torch's float32 `mean()` sums
 * in float32 in an order set by the CPU's vector width, so bitsandbytes' own offset can differ
 * from this in the last bit (and between machines); a stored offset is always used as stored.
 */
export function meanF32(values: Float32Array): number {
  let sum = 0;
  for (const v of values) sum += v;
  return Math.fround(sum / values.length);
}

/** Double quantization of NF4 absmax values (bitsandbytes' compress_statistics). */
export function compressAbsmax(absmax: Float32Array, offset = meanF32(absmax)): CompressedAbsmax {
  const centred = absmax.map((v) => v - offset);
  const q = quantizeBlockwise8(centred, DOUBLE_QUANT_BLOCK_SIZE);
  return { absmaxCodes: q.codes, absmax2: q.absmax, offset };
}

/** The float32 absmax values a CompressedAbsmax stands for: map[code] · absmax2 + offset. */
export function decompressAbsmax(c: CompressedAbsmax): Float32Array {
  const out = dequantizeBlockwise8(c.absmaxCodes, c.absmax2, DOUBLE_QUANT_BLOCK_SIZE);
  for (let i = 0; i < out.length; i++) out[i] += c.offset;
  return out;
}

export interface Nf4DoubleQuantized extends CompressedAbsmax {
  /** Packed NF4 codes, as quantizeNf4's. */
  codes: Uint8Array;
}

/** NF4 with double quantization (bitsandbytes' quantize_4bit(..., compress_statistics=True)). */
export function quantizeNf4Double(data: Float32Array, blockSize = 64): Nf4DoubleQuantized {
  const { codes, absmax } = quantizeNf4(data, blockSize);
  return { codes, ...compressAbsmax(absmax) };
}

/** Inverse of quantizeNf4Double: level[code] · (map[absmax code] · absmax2 + offset). */
export function dequantizeNf4Double(
  q: Nf4DoubleQuantized,
  blockSize = 64,
  length = q.codes.length * 2,
): Float32Array {
  return dequantizeNf4(q.codes, decompressAbsmax(q), blockSize, length);
}

export interface BlockQuantized {
  /** int4: packed uint8 [rows, blocksPerRow, blockSize / 2]; int8: int8 [rows, cols]. */
  codes: Uint8Array | Int8Array;
  /** float32 [rows, blocksPerRow] */
  scales: Float32Array;
}

function rowBlocks(rows: number, cols: number, data: Float32Array, blockSize: number, what: string) {
  checkBlockSize(blockSize, what);
  if (data.length !== rows * cols) {
    throw new Error(`${what}: ${data.length} values do not form a [${rows}, ${cols}] matrix`);
  }
  return Math.ceil(cols / blockSize);
}

/** int4 (MatMulNBits layout) of a [rows, cols] matrix, blocks along each row. */
export function quantizeInt4(data: Float32Array, rows: number, cols: number, blockSize = 32): BlockQuantized {
  const nb = rowBlocks(rows, cols, data, blockSize, "quantizeInt4");
  const half = blockSize / 2;
  const codes = new Uint8Array(rows * nb * half).fill(0x88);
  const scales = new Float32Array(rows * nb);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const start = r * cols + b * blockSize;
      const len = Math.min(blockSize, cols - b * blockSize);
      let vmax = 0;
      for (let i = 0; i < len; i++) if (Math.abs(data[start + i]) > Math.abs(vmax)) vmax = data[start + i];
      const scale = Math.fround(vmax / -8);
      scales[r * nb + b] = scale;
      const inv = scale === 0 ? 0 : 1 / scale;
      const out = (r * nb + b) * half;
      for (let i = 0; i < len; i++) {
        const q = Math.min(15, Math.max(0, Math.round(data[start + i] * inv) + 8));
        const j = out + (i >> 1);
        codes[j] = i & 1 ? (codes[j] & 0x0f) | (q << 4) : (codes[j] & 0xf0) | q;
      }
    }
  }
  return { codes, scales };
}

/** Inverse of quantizeInt4: (code - 8) · scale, as a [rows, cols] float32 matrix. */
export function dequantizeInt4(
  codes: Uint8Array,
  scales: Float32Array,
  rows: number,
  cols: number,
  blockSize = 32,
): Float32Array {
  checkBlockSize(blockSize, "dequantizeInt4");
  const nb = Math.ceil(cols / blockSize);
  const half = blockSize / 2;
  if (codes.length !== rows * nb * half || scales.length !== rows * nb) {
    throw new Error(
      `dequantizeInt4: ${codes.length} code bytes / ${scales.length} scales do not fit [${rows}, ${cols}] in blocks of ${blockSize}`,
    );
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const b = Math.floor(c / blockSize);
      const i = c % blockSize;
      const byte = codes[(r * nb + b) * half + (i >> 1)];
      const q = i & 1 ? byte >> 4 : byte & 15;
      out[r * cols + c] = (q - 8) * scales[r * nb + b];
    }
  }
  return out;
}

/** Symmetric int8 of a [rows, cols] matrix, blocks of `blockSize` along each row. */
export function quantizeInt8(data: Float32Array, rows: number, cols: number, blockSize = 32): BlockQuantized {
  const nb = rowBlocks(rows, cols, data, blockSize, "quantizeInt8");
  const codes = new Int8Array(rows * cols);
  const scales = new Float32Array(rows * nb);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const start = r * cols + b * blockSize;
      const len = Math.min(blockSize, cols - b * blockSize);
      let m = 0;
      for (let i = 0; i < len; i++) m = Math.max(m, Math.abs(data[start + i]));
      const scale = Math.fround(m / 127);
      scales[r * nb + b] = scale;
      const inv = scale === 0 ? 0 : 1 / scale;
      for (let i = 0; i < len; i++) {
        codes[start + i] = Math.min(127, Math.max(-127, Math.round(data[start + i] * inv)));
      }
    }
  }
  return { codes, scales };
}

/** Inverse of quantizeInt8: code · scale. */
export function dequantizeInt8(
  codes: Int8Array,
  scales: Float32Array,
  rows: number,
  cols: number,
  blockSize = 32,
): Float32Array {
  checkBlockSize(blockSize, "dequantizeInt8");
  const nb = Math.ceil(cols / blockSize);
  if (codes.length !== rows * cols || scales.length !== rows * nb) {
    throw new Error(
      `dequantizeInt8: ${codes.length} codes / ${scales.length} scales do not fit [${rows}, ${cols}] in blocks of ${blockSize}`,
    );
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      out[r * cols + c] = codes[r * cols + c] * scales[r * nb + Math.floor(c / blockSize)];
    }
  }
  return out;
}
