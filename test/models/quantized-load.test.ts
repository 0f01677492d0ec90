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
import { loadCheckpoint } from "../../src/models/registry.js";
import { parseQuantScheme, quantizeWeight } from "../../src/quant/weights.js";
import { REFERENCE } from "./helpers.js";

const tmp = mkdtempSync(path.join(tmpdir(), "toxlora-quant-cache-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const KEY = "model.layers.0.mlp.up_proj.weight";

async function load(arch: string, cacheDir: string, notes: string[]) {
  const ckpt = await loadCheckpoint(path.join(REFERENCE, arch), {
    quantize: { scheme: "int4" },
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
    assert.throws(
      () => quantizeWeight("x.weight", new Float32Array(3 * 16), 3, 16, { scheme: "nf4", blockSize: 32 }),
      /tensor "x.weight" \[3, 16\] has 48 values, not a multiple of the NF4 block size 32/,
    );
  });
});
