import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  numel,
  openCheckpoint,
  openSafetensors,
  readSafetensors,
  writeSafetensors,
} from "../../src/io/safetensors.js";
import { fixture } from "../fixture.js";

const REF = fixture("reference");
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "toxlora-st-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Builds a safetensors file by hand: header object + raw data bytes. */
function handMade(header: Record<string, unknown>, data: Uint8Array, pad = true): Buffer {
  let json = JSON.stringify(header);
  if (pad) json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json), data]);
}

function u16le(values: number[]): Uint8Array {
  const b = Buffer.alloc(values.length * 2);
  for (const [i, v] of values.entries()) b.writeUInt16LE(v, i * 2);
  return b;
}

describe("writeSafetensors / openSafetensors round trip", () => {
  test("F32 tensors, a scalar, an empty tensor and metadata come back identical", async () => {
    const file = path.join(dir, "rt.safetensors");
    const w = Float32Array.from({ length: 12 }, (_, i) => i * 0.5 - 3);
    const s = Float32Array.of(-1.25);
    await writeSafetensors(
      file,
      {
        "layer.weight": { data: w, shape: [3, 4] },
        loss: { data: s, shape: [] },
        empty: { data: new Float32Array(0), shape: [0, 5] },
      },
      { format: "pt" },
    );
    const bytes = await readFile(file);
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal(n % 8, 0, "header length is padded to a multiple of 8");
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
    assert.deepEqual(header.__metadata__, { format: "pt" });
    assert.deepEqual(header["layer.weight"], { dtype: "F32", shape: [3, 4], data_offsets: [0, 48] });
    assert.equal(bytes.length, 8 + n + 48 + 4);

    const st = await openSafetensors(file);
    try {
      assert.deepEqual(st.keys(), ["layer.weight", "loss", "empty"]);
      assert.deepEqual(st.metadata, { format: "pt" });
      assert.deepEqual(st.info("loss"), { dtype: "F32", shape: [], byteLength: 4, file });
      assert.deepEqual(await st.getF32("layer.weight"), { data: w, shape: [3, 4] });
      assert.deepEqual(await st.getF32("loss"), { data: s, shape: [] });
      assert.deepEqual(await st.getF32("empty"), { data: new Float32Array(0), shape: [0, 5] });
      assert.deepEqual(await st.getBytes("loss"), new Uint8Array(s.buffer));
    } finally {
      await st.close();
    }
    // Nothing left behind by the atomic write.
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.includes(".tmp-")),
      [],
    );
  });

  test("F64, I64, I32 and U8 data keep their dtype and read back as float32", async () => {
    const file = path.join(dir, "types.safetensors");
    await writeSafetensors(
      file,
      new Map([
        ["f64", { data: Float64Array.of(1.5, -2.25, 1e300), shape: [3] }],
        ["i64", { data: BigInt64Array.of(-3n, 7n, 1n << 40n), shape: [3] }],
        ["i32", { data: Int32Array.of(-5, 6), shape: [2, 1] }],
        ["i32as64", { data: Int32Array.of(9, -9), shape: [2], dtype: "I64" as const }],
        ["u8", { data: Uint8Array.of(0, 255), shape: [2] }],
      ]),
    );
    const st = await openSafetensors(file);
    try {
      assert.deepEqual(
        st.keys().map((k) => st.info(k).dtype),
        ["F64", "I64", "I32", "I64", "U8"],
      );
      assert.deepEqual([...(await st.getF32("f64")).data], [1.5, -2.25, Number.POSITIVE_INFINITY]);
      assert.deepEqual([...(await st.getF32("i64")).data], [-3, 7, 2 ** 40]);
      assert.deepEqual(await st.getF32("i32"), { data: Float32Array.of(-5, 6), shape: [2, 1] });
      assert.deepEqual([...(await st.getF32("i32as64")).data], [9, -9]);
      assert.deepEqual([...(await st.getF32("u8")).data], [0, 255]);
    } finally {
      await st.close();
    }
  });

  test("writes Float32 data as F16 / BF16 with round-to-nearest-even bits", async () => {
    const file = path.join(dir, "half.safetensors");
    const v = Float32Array.of(
      1,
      1 + 2 ** -11, // exact tie between 1 and 1+2^-10: even → 1
      1 + 3 * 2 ** -11, // tie between 1+2^-10 (odd) and 1+2^-9 (even)
      65519, // rounds down to 65504
      65520, // tie with 65536 (Inf): even → Inf
      2 ** -25, // tie between 0 and the smallest subnormal: even → 0
      3 * 2 ** -25, // tie between 1 and 2 subnormal units → 2
      -0,
      Number.NEGATIVE_INFINITY,
      Number.NaN,
    );
    const bv = Float32Array.of(1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -3, 3.4e38, Number.NaN);
    await writeSafetensors(file, {
      h: { data: v, shape: [v.length], dtype: "F16" },
      b: { data: bv, shape: [bv.length], dtype: "BF16" },
      h64: { data: Float64Array.of(0.5, -2), shape: [2], dtype: "F16" },
    });
    const st = await openSafetensors(file);
    try {
      const hb = new Uint16Array((await st.getBytes("h")).slice().buffer);
      assert.deepEqual(
        [...hb],
        [0x3c00, 0x3c00, 0x3c02, 0x7bff, 0x7c00, 0x0000, 0x0002, 0x8000, 0xfc00, hb[9]],
      );
      assert.equal(hb[9] & 0x7c00, 0x7c00);
      assert.notEqual(hb[9] & 0x3ff, 0, "NaN stays NaN");
      const bb = new Uint16Array((await st.getBytes("b")).slice().buffer);
      assert.deepEqual([...bb].slice(0, 4), [0x3f80, 0x3f80, 0x3f82, 0xc040]);
      assert.equal(bb[4], 0x7f80, "3.4e38 rounds up to +Inf in bf16");
      assert.ok((bb[5] & 0x7f80) === 0x7f80 && (bb[5] & 0x7f) !== 0, "NaN stays NaN");
      assert.deepEqual([...(await st.getF32("h64")).data], [0.5, -2]);
    } finally {
      await st.close();
    }
  });

  test("every F16 and BF16 bit pattern survives read (→ f32) then write (→ half)", async () => {
    const all = Array.from({ length: 65536 }, (_, i) => i);
    for (const dtype of ["F16", "BF16"] as const) {
      const src = path.join(dir, `all-${dtype}.safetensors`);
      await writeFile(src, handMade({ x: { dtype, shape: [65536], data_offsets: [0, 131072] } }, u16le(all)));
      const srcSt = await openSafetensors(src);
      const { data } = await srcSt.getF32("x");
      await srcSt.close();
      const back = path.join(dir, `back-${dtype}.safetensors`);
      await writeSafetensors(back, { x: { data, shape: [65536], dtype } });
      const st = await openSafetensors(back);
      const bits = new Uint16Array((await st.getBytes("x")).slice().buffer);
      await st.close();
      const expMask = dtype === "F16" ? 0x7c00 : 0x7f80;
      let mismatches = 0;
      for (let i = 0; i < 65536; i++) {
        const ok = Number.isNaN(data[i])
          ? (bits[i] & expMask) === expMask && (bits[i] & ~expMask & 0x7fff) !== 0
          : bits[i] === i;
        if (!ok) mismatches++;
      }
      assert.equal(mismatches, 0, `${dtype}: all non-NaN patterns round-trip exactly`);
    }
  });
});

describe("reading hand-written files", () => {
  test("F16 and BF16 bytes convert to the right float32 values", async () => {
    const file = path.join(dir, "hand.safetensors");
    const f16 = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x8000, 0x3555, 0x7e00];
    const bf16 = [0x3f80, 0xc040, 0x4049, 0x7f80, 0x0001, 0xff80];
    const f64 = Buffer.alloc(16);
    f64.writeDoubleLE(0.1, 0);
    f64.writeDoubleLE(-1e10, 8);
    const i64 = Buffer.alloc(16);
    i64.writeBigInt64LE(-42n, 0);
    i64.writeBigInt64LE(123456789n, 8);
    const i32 = Buffer.alloc(8);
    i32.writeInt32LE(-7, 0);
    i32.writeInt32LE(2147483647, 4);
    const data = Buffer.concat([u16le(f16), u16le(bf16), f64, i64, i32]);
    let o = 0;
    const at = (bytes: number) => {
      const r = [o, o + bytes];
      o += bytes;
      return r;
    };
    await writeFile(
      file,
      handMade(
        {
          h: { dtype: "F16", shape: [2, 4], data_offsets: at(16) },
          b: { dtype: "BF16", shape: [6], data_offsets: at(12) },
          d: { dtype: "F64", shape: [2], data_offsets: at(16) },
          l: { dtype: "I64", shape: [2], data_offsets: at(16) },
          i: { dtype: "I32", shape: [2], data_offsets: at(8) },
        },
        data,
        false, // unpadded header: readers must not require padding
      ),
    );
    const st = await openSafetensors(file);
    try {
      const h = await st.getF32("h");
      assert.deepEqual(h.shape, [2, 4]);
      assert.deepEqual(
        [...h.data.slice(0, 7)],
        [1, -2, 65504, 2 ** -24, Number.POSITIVE_INFINITY, -0, 0.333251953125],
      );
      assert.ok(Number.isNaN(h.data[7]));
      assert.ok(Object.is(h.data[5], -0));
      const b = await st.getF32("b");
      assert.deepEqual(
        [...b.data],
        [1, -3, 3.140625, Number.POSITIVE_INFINITY, 2 ** -133, Number.NEGATIVE_INFINITY],
      );
      assert.deepEqual([...(await st.getF32("d")).data], [Math.fround(0.1), -1e10]);
      assert.deepEqual([...(await st.getF32("l")).data], [-42, Math.fround(123456789)]);
      assert.deepEqual([...(await st.getF32("i")).data], [-7, 2147483648]);
      assert.equal(st.info("b").byteLength, 12);
    } finally {
      await st.close();
    }
  });

  test("clear errors: truncated file, bad header, wrong sizes, unknown dtype, missing key", async () => {
    const good = path.join(dir, "good.safetensors");
    await writeSafetensors(good, { "a.weight": { data: new Float32Array(100), shape: [10, 10] } });

    const cut = path.join(dir, "cut.safetensors");
    await writeFile(cut, await readFile(good));
    const full = (await readFile(good)).length;
    await truncate(cut, full - 8);
    await assert.rejects(openSafetensors(cut), (e: Error) => {
      assert.match(e.message, /cut\.safetensors: truncated: tensor "a\.weight" ends at data byte 400/);
      return true;
    });
    await truncate(cut, 20);
    await assert.rejects(openSafetensors(cut), /cut\.safetensors: truncated: header declares \d+ bytes/);
    await truncate(cut, 3);
    await assert.rejects(openSafetensors(cut), /cut\.safetensors: truncated: 3 bytes/);

    const bad = path.join(dir, "bad.safetensors");
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(5n);
    await writeFile(bad, Buffer.concat([len, Buffer.from("{nope")]));
    await assert.rejects(openSafetensors(bad), /bad\.safetensors: bad safetensors header: not valid JSON/);

    len.writeBigUInt64LE(1n << 40n);
    await writeFile(bad, Buffer.concat([len, Buffer.from("{}")]));
    await assert.rejects(openSafetensors(bad), /declared header length \d+ is too large/);

    await writeFile(
      bad,
      handMade({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)),
    );
    await assert.rejects(
      openSafetensors(bad),
      /tensor "w": data_offsets \[0, 8\] hold 8 bytes, but F32 with shape \[3\] needs 12/,
    );

    await writeFile(
      bad,
      handMade({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)),
    );
    await assert.rejects(openSafetensors(bad), /tensor "w": "shape" must be a list of non-negative integers/);

    await writeFile(
      bad,
      handMade(
        {
          x: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
          y: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
        },
        new Uint8Array(12),
      ),
    );
    await assert.rejects(openSafetensors(bad), /tensors "x" and "y" overlap/);

    // An unknown dtype does not stop the file from opening; reading that tensor fails clearly.
    await writeFile(
      bad,
      handMade(
        {
          ok: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
          odd: { dtype: "F8_E4M3", shape: [4], data_offsets: [4, 8] },
          future: { dtype: "Q4_K", shape: [4], data_offsets: [8, 10] },
        },
        new Uint8Array(10),
      ),
    );
    const st = await openSafetensors(bad);
    try {
      assert.deepEqual([...(await st.getF32("ok")).data], [0]);
      await assert.rejects(
        st.getF32("odd"),
        /bad\.safetensors: tensor "odd": unsupported dtype "F8_E4M3" \(toxlora converts F64, F32, F16, BF16/,
      );
      await assert.rejects(st.getF32("future"), /tensor "future": unsupported dtype "Q4_K"/);
      assert.equal((await st.getBytes("future")).length, 2);
      assert.throws(() => st.info("nope"), /bad\.safetensors: no tensor named "nope"/);
    } finally {
      await st.close();
    }
    await assert.rejects(st.getF32("ok"), /already closed/);
  });
});

describe("writer: streaming and validation", () => {
  test("producers are called one at a time, chunks may be async iterables, progress reaches the total", async () => {
    const file = path.join(dir, "stream.safetensors");
    const calls: string[] = [];
    const progress: number[] = [];
    let total = 0;
    await writeSafetensors(
      file,
      {
        a: {
          shape: [2, 3],
          data: () => {
            calls.push("a");
            return Float32Array.of(1, 2, 3, 4, 5, 6);
          },
        },
        b: {
          shape: [5],
          dtype: "BF16",
          data: async function* () {
            calls.push("b");
            yield Float32Array.of(1, 2);
            yield Float32Array.of(3, 4, 5);
          },
        },
        c: {
          shape: [2],
          data: async () => {
            calls.push("c");
            return Float32Array.of(7, 8);
          },
        },
      },
      undefined,
      {
        onProgress: (n, t) => {
          progress.push(n);
          total = t;
        },
      },
    );
    assert.deepEqual(calls, ["a", "b", "c"]);
    assert.equal(progress.at(-1), total);
    assert.equal((await readFile(file)).length, total);
    const m = await readSafetensors(file);
    assert.deepEqual([...(m.get("a")?.data ?? [])], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual([...(m.get("b")?.data ?? [])], [1, 2, 3, 4, 5]);
    assert.deepEqual([...(m.get("c")?.data ?? [])], [7, 8]);
  });

  test("a producer that gives the wrong size aborts the write and leaves the old file intact", async () => {
    const file = path.join(dir, "keep.safetensors");
    await writeSafetensors(file, { x: { data: Float32Array.of(1), shape: [1] } });
    const before = await readFile(file);
    await assert.rejects(
      writeSafetensors(file, { x: { shape: [4], data: () => new Float32Array(3) } }),
      /keep\.safetensors: tensor "x": got 3 elements, shape \[4\] needs 4/,
    );
    await assert.rejects(
      writeSafetensors(file, { x: { shape: [2], data: Float32Array.of(1, 2, 3) } }),
      /got more data than shape \[2\]/,
    );
    await assert.rejects(
      writeSafetensors(file, { x: { shape: [2], data: Int32Array.of(1, 2), dtype: "F16" } }),
      /cannot write Int32Array data as F16/,
    );
    assert.deepEqual(await readFile(file), before);
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.startsWith("keep.safetensors.tmp-")),
      [],
    );
  });

  test("several MB streamed in chunks read back exactly", async () => {
    const file = path.join(dir, "big.safetensors");
    const rows = 1024;
    const cols = 2048; // 8 MB as F32
    const row = (r: number) => Float32Array.from({ length: cols }, (_, c) => Math.sin(r * 31 + c));
    await writeSafetensors(file, {
      big: {
        shape: [rows, cols],
        data: function* () {
          for (let r = 0; r < rows; r++) yield row(r);
        },
      },
      big16: {
        shape: [rows, cols],
        dtype: "BF16",
        data: function* () {
          for (let r = 0; r < rows; r++) yield row(r);
        },
      },
    });
    const st = await openSafetensors(file);
    try {
      const { data } = await st.getF32("big");
      const h = await st.getF32("big16");
      for (const r of [0, 1, 511, 1023]) {
        assert.deepEqual(data.subarray(r * cols, (r + 1) * cols), row(r));
        const expect = row(r);
        for (let c = 0; c < cols; c += 97) {
          assert.ok(Math.abs(h.data[r * cols + c] - expect[c]) <= Math.abs(expect[c]) * 2 ** -8);
        }
      }
    } finally {
      await st.close();
    }
  });
});

describe("sharded checkpoints", () => {
  test("openCheckpoint presents the shards of model.safetensors.index.json as one key space", async () => {
    const ck = path.join(dir, "sharded");
    await writeSafetensors(path.join(ck, "model-00001-of-00002.safetensors"), {
      "a.weight": { data: Float32Array.of(1, 2), shape: [2] },
      "b.weight": { data: Float32Array.of(3), shape: [1], dtype: "F16" },
    });
    await writeSafetensors(path.join(ck, "model-00002-of-00002.safetensors"), {
      "c.weight": { data: Float32Array.of(4, 5, 6, 7), shape: [2, 2], dtype: "BF16" },
    });
    const index = {
      metadata: { total_size: 18 },
      weight_map: {
        "a.weight": "model-00001-of-00002.safetensors",
        "c.weight": "model-00002-of-00002.safetensors",
        "b.weight": "model-00001-of-00002.safetensors",
      },
    };
    await writeFile(path.join(ck, "model.safetensors.index.json"), JSON.stringify(index));
    const src = await openCheckpoint(ck);
    try {
      assert.deepEqual(src.keys(), ["a.weight", "c.weight", "b.weight"]);
      assert.equal(src.info("c.weight").dtype, "BF16");
      assert.equal(path.basename(src.info("c.weight").file), "model-00002-of-00002.safetensors");
      assert.deepEqual(await src.getF32("c.weight"), { data: Float32Array.of(4, 5, 6, 7), shape: [2, 2] });
      assert.deepEqual([...(await src.getF32("b.weight")).data], [3]);
      assert.throws(() => src.info("zzz"), /no tensor named "zzz" in the checkpoint/);
    } finally {
      await src.close();
    }

    // Index errors name the index file, the key and the shard.
    const wrong = { weight_map: { ...index.weight_map, "a.weight": "model-00002-of-00002.safetensors" } };
    await writeFile(path.join(ck, "model.safetensors.index.json"), JSON.stringify(wrong));
    await assert.rejects(
      openCheckpoint(ck),
      /index\.json: weight_map puts tensor "a\.weight" in "model-00002-of-00002\.safetensors", but that shard has no such tensor/,
    );
    const missing = { weight_map: { "a.weight": "model-00003-of-00003.safetensors" } };
    await writeFile(path.join(ck, "model.safetensors.index.json"), JSON.stringify(missing));
    await assert.rejects(
      openCheckpoint(ck),
      /shard "model-00003-of-00003\.safetensors" listed in weight_map is missing/,
    );
    await writeFile(
      path.join(ck, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: { x: "../evil" } }),
    );
    await assert.rejects(openCheckpoint(ck), /weight_map\["x"\] must be a shard file name inside the folder/);
  });

  test("a folder with model.safetensors, and a folder without weights", async () => {
    const one = path.join(dir, "single");
    await writeSafetensors(path.join(one, "model.safetensors"), {
      w: { data: Float32Array.of(1), shape: [1] },
    });
    const src = await openCheckpoint(one);
    assert.deepEqual(src.keys(), ["w"]);
    await src.close();

    const none = path.join(dir, "torch");
    await writeFile(path.join(one, "pytorch_model.bin"), "x"); // ignored when safetensors exist
    await writeSafetensors(path.join(none, "other.safetensors"), {
      w: { data: Float32Array.of(1), shape: [1] },
    });
    await writeFile(path.join(none, "pytorch_model.bin"), "x");
    await assert.rejects(
      openCheckpoint(none),
      /torch: no model\.safetensors or model\.safetensors\.index\.json in this folder\. It has PyTorch pickle weights \(pytorch_model\.bin\)/,
    );
    await assert.rejects(openCheckpoint(path.join(dir, "nope")), /nope: no such checkpoint file or folder/);
  });
});

describe("reference fixtures", () => {
  /** Independent minimal parse: whole file in memory, F32 only. */
  async function naive(file: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const b = await readFile(file);
    const n = Number(b.readBigUInt64LE(0));
    const h = JSON.parse(b.subarray(8, 8 + n).toString());
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [k, v] of Object.entries(
      h as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>,
    )) {
      if (k === "__metadata__") continue;
      assert.equal(v.dtype, "F32");
      const bytes = b.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]);
      out.set(k, { shape: v.shape, data: new Float32Array(Uint8Array.from(bytes).buffer) });
    }
    return out;
  }

  for (const arch of ["bert", "llama", "modernbert"]) {
    test(`${arch}: every .safetensors file reads correctly (incl. scalars)`, async () => {
      const files = [
        `${arch}/model.safetensors`,
        `${arch}/head.safetensors`,
        `${arch}/expected.safetensors`,
        `${arch}/lora/adapter_model.safetensors`,
        `${arch}/lora/ce2_head.safetensors`,
        `${arch}/lora/expected.safetensors`,
      ];
      let scalars = 0;
      for (const rel of files) {
        const file = path.join(REF, rel);
        const expected = await naive(file);
        const st = await openSafetensors(file);
        try {
          assert.deepEqual(st.metadata, { format: "pt" });
          assert.deepEqual(st.keys().sort(), [...expected.keys()].sort(), rel);
          for (const k of st.keys()) {
            const t = await st.getF32(k);
            const e = expected.get(k);
            assert.deepEqual(t.shape, e?.shape, `${rel} ${k}`);
            assert.equal(t.data.length, numel(t.shape));
            assert.deepEqual(t.data, e?.data, `${rel} ${k}`);
            if (t.shape.length === 0) scalars++;
          }
        } finally {
          await st.close();
        }
      }
      assert.ok(scalars >= 2, "lora/expected.safetensors holds scalar losses with shape []");
      const ck = await openCheckpoint(path.join(REF, arch));
      assert.ok(ck.keys().length > 10);
      await ck.close();
    });
  }
});
