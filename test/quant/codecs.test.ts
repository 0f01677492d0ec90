// The weight codecs: NF4 bit-exact against the bitsandbytes-layout fixture (test/fixtures/quant),
// int4/int8 round trips and their layouts, and the error cases.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { openSafetensors } from "../../src/io/safetensors.js";
import {
  dequantizeInt4,
  dequantizeInt8,
  dequantizeNf4,
  NF4_LEVELS,
  quantizeInt4,
  quantizeInt8,
  quantizeNf4,
} from "../../src/quant/codecs.js";

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/quant/nf4.safetensors");

function rand(n: number, seed = 1): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s / 2 ** 31 - 0.5) * 2;
  });
}

describe("NF4 (bitsandbytes layout)", () => {
  it("quantizeNf4 gives exactly the fixture's codes and absmax; dequantizeNf4 its values to 1e-7", async () => {
    const st = await openSafetensors(FIXTURE);
    try {
      const w = await st.getF32("weight");
      const codes = await st.getBytes("codes");
      const absmax = await st.getF32("absmax");
      const deq = await st.getF32("dequantized");
      const q = quantizeNf4(w.data);
      assert.equal(q.codes.length, codes.length);
      const wrong = q.codes.findIndex((c, i) => c !== codes[i]);
      assert.equal(wrong, -1, `code byte ${wrong}: ${q.codes[wrong]} vs fixture ${codes[wrong]}`);
      assert.deepEqual([...q.absmax], [...absmax.data]);
      const back = dequantizeNf4(codes, absmax.data);
      let d = 0;
      for (let i = 0; i < back.length; i++) d = Math.max(d, Math.abs(back[i] - deq.data[i]));
      assert.ok(d <= 1e-7, `max |dequantized - fixture| = ${d}`);
    } finally {
      await st.close();
    }
  });

  it("packs the first value of a pair in the high nibble; a zero block dequantizes to zeros", () => {
    const x = new Float32Array(8);
    x[0] = -1;
    x[1] = 1; // absmax 1: codes 0 and 15
    const q = quantizeNf4(x, 4);
    assert.equal(q.codes[0], 0x0f);
    assert.deepEqual([...q.absmax], [1, 0]);
    assert.equal(q.codes[2], 0x77); // the zero block: both codes 7 (level 0.0)
    assert.deepEqual([...dequantizeNf4(q.codes, q.absmax, 4)], [-1, 1, 0, 0, 0, 0, 0, 0]);
  });

  it("a partial last block and an odd length round-trip", () => {
    const x = rand(131);
    const q = quantizeNf4(x, 64);
    assert.equal(q.codes.length, 66);
    assert.equal(q.absmax.length, 3);
    const y = dequantizeNf4(q.codes, q.absmax, 64, 131);
    for (let i = 0; i < x.length; i++) {
      const m = q.absmax[Math.floor(i / 64)];
      // Nearest level: error at most half the widest gap between levels (0.304 / 2) times absmax.
      assert.ok(Math.abs(x[i] - y[i]) <= 0.153 * m, `value ${i}: ${x[i]} -> ${y[i]}`);
      assert.ok(NF4_LEVELS.includes(Math.fround(y[i] / m)) || m === 0);
    }
  });

  it("refuses an odd block size and too few codes", () => {
    assert.throws(() => quantizeNf4(new Float32Array(4), 3), /block size must be an even integer/);
    assert.throws(() => dequantizeNf4(new Uint8Array(2), new Float32Array(1), 64, 8), /cannot hold 8 values/);
  });
});

describe("int4 (MatMulNBits layout)", () => {
  it("round-trips within half a step; first value in the low nibble; partial blocks padded with 8", () => {
    const rows = 3;
    const cols = 40; // two blocks of 32, the second one partial
    const x = rand(rows * cols, 7);
    const q = quantizeInt4(x, rows, cols, 32);
    assert.equal(q.codes.length, rows * 2 * 16);
    assert.equal(q.scales.length, rows * 2);
    const y = dequantizeInt4(q.codes as Uint8Array, q.scales, rows, cols, 32);
    for (let i = 0; i < x.length; i++) {
      const s = Math.abs(q.scales[Math.floor(i / cols) * 2 + Math.floor((i % cols) / 32)]);
      // Half a step, except values opposite the block's extreme beyond 7.5 steps (clamped to +7).
      const tol = Math.abs(x[i]) > 7.5 * s ? s : s / 2;
      assert.ok(Math.abs(x[i] - y[i]) <= tol + 1e-7, `value ${i}: ${x[i]} -> ${y[i]}`);
    }
    // Padding of row 0's second block (values 8..15 of it) is code 8 in both nibbles.
    assert.equal(q.codes[16 + 4 + 1], 0x88);
    const one = quantizeInt4(Float32Array.from([2, 1, ...new Array(30).fill(0)]), 1, 32, 32);
    assert.equal(one.scales[0], -0.25); // the largest-magnitude value maps to -8
    assert.equal(one.codes[0], 0x40); // 2 -> code 0 (low nibble), 1 -> code 4 (high nibble)
  });
});

describe("int8 (symmetric, blockwise or per channel)", () => {
  it("round-trips within half a step; per-channel = block size = columns", () => {
    const x = rand(4 * 64, 3);
    for (const bs of [16, 64]) {
      const q = quantizeInt8(x, 4, 64, bs);
      assert.equal(q.scales.length, 4 * (64 / bs));
      const y = dequantizeInt8(q.codes as Int8Array, q.scales, 4, 64, bs);
      for (let i = 0; i < x.length; i++) {
        const s = q.scales[Math.floor(i / 64) * (64 / bs) + Math.floor((i % 64) / bs)];
        assert.ok(Math.abs(x[i] - y[i]) <= s / 2 + 1e-7, `value ${i}`);
      }
    }
  });

  it("refuses data that is not the stated matrix", () => {
    assert.throws(() => quantizeInt8(new Float32Array(10), 3, 4), /10 values do not form a \[3, 4\] matrix/);
  });
});
