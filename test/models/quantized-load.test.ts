// Loading with a quantized base: the on-disk cache is used when valid and rebuilt (with one note
// saying why) when truncated, corrupt or made from another checkpoint; bad options fail clearly.
import assert from "node:assert/strict";
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { openSafetensors } from "../../src/io/safetensors.js";
import { loadCheckpoint } from "../../src/models/registry.js";
import { compressAbsmax, DYNAMIC_MAP_8BIT, decompressAbsmax } from "../../src/quant/codecs.js";
import {
  checkpointQuantOptions,
  parseQuantScheme,
  type QuantizeOptions,
  quantizeWeight,
} from "../../src/quant/weights.js";
import { REFERENCE } from "./helpers.js";

const tmp = mkdtempSync(path.join(tmpdir(), "toxlora-quant-cache-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const KEY = "model.layers.0.mlp.up_proj.weight";

async function load(
  arch: string,
  cacheDir: string,
  notes: string[],
  quantize: QuantizeOptions = { scheme: "int4" },
) {
  const ckpt = await loadCheckpoint(path.join(REFERENCE, arch), {
    quantize,
    quantCacheDir: cacheDir,
    onNote: (m) => notes.push(m),
  });
  return ckpt.weights;
}

function cacheFiles(dir: string): string[] {
  return readdirSync(path.join(dir, "quantized")).map((f) => path.join(dir, "quantized", f));
}

describe("quantized weight cache", () => {
  it("is written once, then used; truncated, corrupt or foreign files are rebuilt with a note", async () => {
    const dir = path.join(tmp, "c1");
    const notes: string[] = [];
    const first = await load("llama", dir, notes);
    const [file] = cacheFiles(dir);
    const bytes = readFileSync(file);
    const second = await load("llama", dir, notes);
    assert.deepEqual(notes, []);
    assert.deepEqual(second.getQuantized?.(KEY)?.codes, first.getQuantized?.(KEY)?.codes);

    truncateSync(file, bytes.length - 10);
    await load("llama", dir, notes);
    assert.equal(notes.length, 1);
    assert.match(notes[0], /not used: .*truncated.*rebuilding/);
    assert.equal(statSync(file).size, bytes.length);

    const corrupt = Buffer.from(bytes);
    corrupt[corrupt.length - 100] ^= 0xff;
    writeFileSync(file, corrupt);
    const rebuilt = await load("llama", dir, notes);
    assert.match(notes[1], /does not match its SHA-256/);
    assert.deepEqual(rebuilt.getQuantized?.(KEY)?.codes, first.getQuantized?.(KEY)?.codes);

    // Another checkpoint's cache file in this one's place.
    await load("bert", dir, notes);
    const bertFile = cacheFiles(dir).find((f) => f !== file) as string;
    copyFileSync(file, bertFile);
    await load("bert", dir, notes);
    assert.match(notes[2], /made for another checkpoint/);
  });

  it("stores only the backbone's linear weights quantized", async () => {
    const w = await load("llama", path.join(tmp, "c2"), []);
    assert.ok(w.getQuantized?.(KEY));
    assert.equal(w.getQuantized?.("model.embed_tokens.weight"), undefined);
    assert.equal(w.getQuantized?.("model.norm.weight"), undefined);
    assert.deepEqual(w.get(KEY)?.shape, [64, 32], "a quantized tensor still reads as float32 (dequantized)");
  });
});

describe("NF4 double quantization on load", () => {
  const NF4: QuantizeOptions = { scheme: "nf4" };
  const DQ: QuantizeOptions = { scheme: "nf4", doubleQuant: true };

  it("keeps bitsandbytes' compressed absmax; the graph's scales are their dequantized values", async () => {
    const plain = (await load("llama", path.join(tmp, "d0"), [], NF4)).getQuantized?.(KEY);
    const dq = (await load("llama", path.join(tmp, "d0"), [], DQ)).getQuantized?.(KEY);
    assert.ok(plain && dq?.doubleQuant);
    assert.deepEqual(dq.codes, plain.codes);
    const want = compressAbsmax(plain.scales);
    assert.deepEqual(dq.doubleQuant, want);
    assert.deepEqual(dq.scales, decompressAbsmax(want));
    assert.notDeepEqual(dq.scales, plain.scales);
  });

  it("caches codes, absmax codes, absmax2, offset and the 8-bit map apart from plain nf4; a swapped or truncated file is rebuilt", async () => {
    const dir = path.join(tmp, "d1");
    const notes: string[] = [];
    await load("llama", dir, notes, NF4);
    const [plainFile] = cacheFiles(dir);
    const first = await load("llama", dir, notes, DQ);
    const dqFile = cacheFiles(dir).find((f) => f !== plainFile) as string;
    assert.ok(dqFile, "double quantization has its own cache file");
    const st = await openSafetensors(dqFile);
    try {
      assert.equal(st.metadata.double_quant, "1");
      assert.deepEqual([...(await st.getF32("dynamic_map")).data], [...DYNAMIC_MAP_8BIT]);
      assert.ok(st.has(`${KEY}.absmax_codes`) && st.has(`${KEY}.absmax2`) && st.has(`${KEY}.absmax_offset`));
      assert.ok(!st.has(`${KEY}.scales`), "no float32 absmax stored");
    } finally {
      await st.close();
    }
    const again = await load("llama", dir, notes, DQ);
    assert.deepEqual(notes, []);
    assert.deepEqual(again.getQuantized?.(KEY), first.getQuantized?.(KEY));

    const bytes = readFileSync(dqFile);
    copyFileSync(plainFile, dqFile);
    await load("llama", dir, notes, DQ);
    assert.match(notes[0], /not used: it was made for another double quant \(0 ≠ 1\); rebuilding/);
    truncateSync(dqFile, bytes.length - 3);
    const rebuilt = await load("llama", dir, notes, DQ);
    assert.match(notes[1], /not used: .*truncated.*rebuilding/);
    assert.deepEqual(rebuilt.getQuantized?.(KEY), first.getQuantized?.(KEY));
    assert.equal(notes.length, 2);
  });

  it("--double-quant with int4 or int8 is refused in one line", async () => {
    await assert.rejects(
      loadCheckpoint(path.join(REFERENCE, "llama"), {
        quantize: { scheme: "int8", doubleQuant: true },
        quantCacheDir: null,
      }),
      /^Error: --double-quant: applies to nf4 only \(the absmax values of NF4 blocks\), not int8$/,
    );
    // Without --quantize (float32) it is refused too, not silently ignored.
    assert.throws(
      () => checkpointQuantOptions({ doubleQuant: true }),
      /^Error: --double-quant: applies to nf4 only \(the absmax values of NF4 blocks\), not none$/,
    );
  });
});

describe("bad quantization options", () => {
  it("an unknown scheme, a bad block size, an NF4 tensor the block size does not divide", async () => {
    assert.throws(
      () => parseQuantScheme("fp8"),
      /unknown quantization scheme "fp8" \(expected one of none, int8, int4, nf4\)/,
    );
    await assert.rejects(
      loadCheckpoint(path.join(REFERENCE, "llama"), {
        quantize: { scheme: "int4", blockSize: 24 },
        quantCacheDir: null,
      }),
      /--quant-block-size: 24 is not a power of two of at least 16/,
    );
    // onnxruntime's kernels take blocks of 16 to 256: larger ones are refused before any work
    // (they used to fail later, at session creation, with onnxruntime's own message).
    for (const [scheme, kernel] of [
      ["nf4", "MatMulBnb4"],
      ["int8", "MatMulNBits"],
    ] as const) {
      await assert.rejects(
        loadCheckpoint(path.join(REFERENCE, "modernbert"), {
          quantize: { scheme, blockSize: 1024 },
          quantCacheDir: null,
        }),
        new RegExp(
          `^Error: --quant-block-size: 1024 is larger than onnxruntime's ${kernel} takes \\(16 to 256\\)$`,
        ),
      );
    }
    assert.throws(
      () => quantizeWeight("x.weight", new Float32Array(3 * 16), 3, 16, { scheme: "nf4", blockSize: 32 }),
      /tensor "x.weight" \[3, 16\] has 48 values, not a multiple of the NF4 block size 32/,
    );
  });
});
