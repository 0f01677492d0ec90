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
    for (let i = start; i < end; i++) {
      const c = nf4Code(Math.fround(data[i] / m));
      codes[i >> 1] |= i & 1 ? c : c << 4;
    }
  }
  return { codes, absmax };
}

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
