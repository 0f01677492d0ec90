// NF4 double quantization (bitsandbytes' compress_statistics=True) bit-exact against the
// pure-PyTorch reproduction of bitsandbytes (test/fixtures/quant/make_double_quant.py).
import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { openSafetensors } from "../../src/io/safetensors.js";
import {
  compressAbsmax,
  DYNAMIC_MAP_8BIT,
  decompressAbsmax,
  dequantizeBlockwise8,
  dequantizeNf4Double,
  quantizeBlockwise8,
  quantizeNf4,
  quantizeNf4Double,
} from "../../src/quant/codecs.js";

const FIXTURE = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  "../fixtures/quant/nf4-double.safetensors",
);

async function readFixture() {
  const st = await openSafetensors(FIXTURE);
  try {
    const f32 = async (k: string) => (await st.getF32(k)).data;
    return {
      weight: await f32("weight"),
      codes: await st.getBytes("codes"),
      absmax: await f32("absmax"),
      map: await f32("dynamic_map"),
      offset: (await f32("offset"))[0],
      absmaxCodes: await st.getBytes("absmax_codes"),
      absmax2: await f32("absmax2"),
      absmaxDequantized: await f32("absmax_dequantized"),
      dequantized: await f32("dequantized"),
    };
  } finally {
    await st.close();
  }
}

function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe("NF4 double quantization (bitsandbytes compress_statistics)", () => {
  it("the dynamic 8-bit map is bitsandbytes' create_dynamic_map(signed=True), bit for bit", async () => {
    const f = await readFixture();
    const i = firstDifference(DYNAMIC_MAP_8BIT, f.map);
    assert.equal(i, -1, `map[${i}] = ${DYNAMIC_MAP_8BIT[i]}, fixture ${f.map[i]}`);
  });

  it("quantizeNf4Double gives exactly the fixture's codes, absmax codes and absmax2 (offset: 1 ulp)", async () => {
    const f = await readFixture();
    const own = quantizeNf4Double(f.weight);
    let i = firstDifference(own.codes, f.codes);
    assert.equal(i, -1, `code byte ${i}: ${own.codes[i]} vs ${f.codes[i]}`);
    // The intermediate float32 absmax too (the NF4 step alone).
    const { absmax } = quantizeNf4(f.weight);
    i = firstDifference(absmax, f.absmax);
    assert.equal(i, -1, `absmax ${i}`);
    // torch sums the float32 mean in a CPU-dependent order (see meanF32): the offset agrees to
    // within one float32 step; given torch's offset, everything after it is bit-exact.
    assert.ok(Math.abs(own.offset - f.offset) <= 2 ** -23 * f.offset, `offset ${own.offset} vs ${f.offset}`);
    const q = compressAbsmax(absmax, f.offset);
    i = firstDifference(q.absmaxCodes, f.absmaxCodes);
    assert.equal(i, -1, `absmax code ${i}: ${q.absmaxCodes[i]} vs ${f.absmaxCodes[i]}`);
    i = firstDifference(q.absmax2, f.absmax2);
    assert.equal(i, -1, `absmax2 ${i}: ${q.absmax2[i]} vs ${f.absmax2[i]}`);
    // 520 NF4 blocks: two whole blocks of 256 absmax values and a partial one.
    assert.equal(q.absmax2.length, 3);
    assert.ok(new Set(q.absmaxCodes).size > 50, "the absmax values use many codes of the map");
  });

  it("dequantizes the absmax values and the weights as the fixture, to 1e-7", async () => {
    const f = await readFixture();
    const stored = { absmaxCodes: f.absmaxCodes, absmax2: f.absmax2, offset: f.offset };
    const d1 = maxAbsDiff(decompressAbsmax(stored), f.absmaxDequantized);
    assert.ok(d1 <= 1e-7, `absmax: max diff ${d1}`);
    const d2 = maxAbsDiff(dequantizeNf4Double({ codes: f.codes, ...stored }), f.dequantized);
    assert.ok(d2 <= 1e-7, `weights: max diff ${d2}`);
    // Double quantization is lossy: the dequantized absmax is not the float32 one.
    assert.ok(maxAbsDiff(f.absmaxDequantized, f.absmax) > 0);
  });

  it("values a float32 step from a midpoint get bitsandbytes' codes (x · (1/absmax), not x / absmax)", async () => {
    const st = await openSafetensors(FIXTURE);
    try {
      const nf4 = quantizeNf4((await st.getF32("edge_nf4")).data);
      const want4 = await st.getBytes("edge_nf4_codes");
      let i = firstDifference(nf4.codes, want4);
      assert.equal(i, -1, `NF4 code byte ${i}: ${nf4.codes[i]} vs ${want4[i]}`);
      const q8 = quantizeBlockwise8((await st.getF32("edge_8bit")).data, 256);
      const want8 = await st.getBytes("edge_8bit_codes");
      i = firstDifference(q8.codes, want8);
      assert.equal(i, -1, `8-bit code ${i}: ${q8.codes[i]} vs ${want8[i]}`);
    } finally {
      await st.close();
    }
  });

  it("8-bit blockwise: a zero block codes to the map's 0; a tie takes the lower code; partial blocks", () => {
    const zero = quantizeBlockwise8(new Float32Array(300));
    assert.deepEqual([...zero.absmax], [0, 0]);
    assert.ok(zero.codes.every((c) => DYNAMIC_MAP_8BIT[c] === 0));
    // Exactly halfway between map[200] and map[201] (scaled by an absmax of 1) rounds down.
    const tie = Math.fround(DYNAMIC_MAP_8BIT[200] + DYNAMIC_MAP_8BIT[201]) / 2;
    const q = quantizeBlockwise8(Float32Array.from([tie, 1, -0.5]), 256);
    assert.equal(q.codes[0], 200);
    assert.equal(q.codes[1], 255);
    const back = dequantizeBlockwise8(q.codes, q.absmax, 256);
    assert.ok(Math.abs(back[2] + 0.5) < 0.01);
    assert.throws(() => dequantizeBlockwise8(new Uint8Array(600), new Float32Array(2), 256), /3|absmax/);
  });

  it("compressAbsmax of one value: offset is the value, codes the map's 0", () => {
    const c = compressAbsmax(Float32Array.from([0.25]));
    assert.equal(c.offset, 0.25);
    assert.deepEqual([...decompressAbsmax(c)], [0.25]);
  });
});
