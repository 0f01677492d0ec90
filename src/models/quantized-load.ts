// Loading a checkpoint with a quantized base: tensors stream from the BF16/F16/F32 safetensors
// one at a time and every backbone linear weight is quantized as soon as it is read, so the
// float32 model never exists whole in memory. The quantized weights are cached on disk under the
// toxlora cache dir, keyed by the checkpoint files' SHA-256 and the scheme; a cache file is used
// only when its key matches and the SHA-256 of its data (stored in its header) checks out, else
// it is rebuilt, with one line saying why.
//
// Cache file layout (safetensors; metadata: format, checkpoint, scheme, block_size, double_quant,
// sha256 of the data): per quantized weight `<key>.codes` (U8) and `<key>.scales` (F32: absmax per
// NF4 block, or int4/int8 scales). With nf4 double quantization `<key>.scales` is replaced by
// `<key>.absmax_codes` (U8, one per NF4 block), `<key>.absmax2` (F32, one per 256 NF4 blocks) and
// `<key>.absmax_offset` (F32 [1]), plus one `dynamic_map` (F32 [256], the 8-bit code) per file.

import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, readFile, stat } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { writeJsonAtomic } from "../io/atomic.js";
import type { F32Tensor, TensorSource } from "../io/safetensors.js";
import { openCheckpoint, openSafetensors, writeSafetensors } from "../io/safetensors.js";
import { type CompressedAbsmax, DYNAMIC_MAP_8BIT, decompressAbsmax } from "../quant/codecs.js";
import {
  blockSizeOf,
  isQuantizable,
  type QuantizedTensor,
  type QuantizeOptions,
  quantizeWeight,
  quantLayout,
} from "../quant/weights.js";
import { WeightMap } from "./weights.js";

/** Bumped whenever the cached layout changes, so old cache files are rebuilt. */
const CACHE_FORMAT = "toxlora-quant-2";

/** toxlora's cache folder: $TOXLORA_CACHE, else $XDG_CACHE_HOME/toxlora, else ~/.cache/toxlora. */
export function toxloraCacheDir(): string {
  return (
    process.env.TOXLORA_CACHE ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), ".cache"), "toxlora")
  );
}

export interface QuantizedLoadOptions {
  quantize: QuantizeOptions;
  /** Keys not to read. */
  skip?: (key: string) => boolean;
  /** Folder of the on-disk cache (default toxloraCacheDir()); null = no cache (--no-quant-cache). */
  cacheDir?: string | null;
  onProgress?: (done: number, total: number) => void;
  /** Progress of hashing the checkpoint's files for the cache key (see checkpointHash). */
  onHashProgress?: HashProgress;
  /** Notes for the user (cache rebuilt and why). */
  onNote?: (message: string) => void;
}

/** Progress of hashing: bytes hashed so far of those not remembered (see checkpointHash). */
export type HashProgress = (doneBytes: number, totalBytes: number) => void;

async function sha256File(file: string, onBytes: (n: number) => void): Promise<string> {
  const h = createHash("sha256");
  // 1 MiB reads: fewer calls than the default 64 KiB, the same speed of hashing.
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
    onBytes((chunk as Buffer).length);
  }
  return h.digest("hex");
}

type HashMemo = Record<string, { size: number; mtimeMs: number; ino: number; sha256: string }>;

/**
 * SHA-256 of a checkpoint's weight files (names and contents, in name order). Each file's hash is
 * remembered in `<cacheDir>/hashes.json` by path, size, mtime and inode, so it is computed once
 * (about 0.7 s per GB measured on a 2-core x86 machine; remembered: milliseconds). `onProgress` follows the
 * bytes of the files that have to be hashed (not called when all are remembered).
 */
export async function checkpointHash(
  files: string[],
  cacheDir: string,
  onProgress?: HashProgress,
): Promise<string> {
  const memoFile = path.join(cacheDir, "hashes.json");
  let memo: HashMemo = {};
  try {
    memo = JSON.parse(await readFile(memoFile, "utf8"));
  } catch {
    memo = {};
  }
  const entries = await Promise.all(
    [...files].sort().map(async (file) => {
      const abs = path.resolve(file);
      const st = await stat(abs);
      const m = memo[abs];
      const known = m && m.size === st.size && m.mtimeMs === st.mtimeMs && m.ino === st.ino;
      return { abs, st, known };
    }),
  );
  const total = entries.reduce((n, e) => n + (e.known ? 0 : e.st.size), 0);
  let done = 0;
  const all = createHash("sha256");
  for (const { abs, st, known } of entries) {
    if (!known) {
      const sha256 = await sha256File(abs, (n) => {
        done += n;
        onProgress?.(done, total);
      });
      memo[abs] = { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256 };
    }
    all.update(`${path.basename(abs)}:${memo[abs].sha256}\n`);
  }
  if (entries.some((e) => !e.known)) {
    await mkdir(cacheDir, { recursive: true });
    await writeJsonAtomic(memoFile, memo);
  }
  return all.digest("hex");
}

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The files a checkpoint's weights come from: its safetensors (shards) and their index. */
export function checkpointFiles(src: TensorSource, dirOrFile: string): string[] {
  const files = [...new Set(src.keys().map((k) => src.info(k).file))];
  const index = path.join(dirOrFile, "model.safetensors.index.json");
  if (existsSync(index)) files.push(index);
  return files;
}

function dataDigest(quantized: Map<string, QuantizedTensor>): string {
  const h = createHash("sha256");
  for (const [k, q] of quantized) {
    h.update(k);
    h.update(q.codes);
    const dq = q.doubleQuant;
    if (dq) {
      h.update(dq.absmaxCodes);
      h.update(bytesOf(dq.absmax2));
      h.update(bytesOf(Float32Array.of(dq.offset)));
    } else h.update(bytesOf(q.scales));
  }
  return h.digest("hex");
}

type CacheKey = {
  format: string;
  checkpoint: string;
  scheme: string;
  block_size: string;
  double_quant: string;
};

/** A cached tensor's absmax values: stored (float32) or double-quantized (see the file comment). */
async function readScales(
  st: TensorSource,
  key: string,
): Promise<{ scales: Float32Array; doubleQuant?: CompressedAbsmax }> {
  if (st.has(`${key}.scales`)) return { scales: (await st.getF32(`${key}.scales`)).data };
  const doubleQuant = {
    absmaxCodes: await st.getBytes(`${key}.absmax_codes`),
    absmax2: (await st.getF32(`${key}.absmax2`)).data,
    offset: (await st.getF32(`${key}.absmax_offset`)).data[0],
  };
  return { scales: decompressAbsmax(doubleQuant), doubleQuant };
}

/** Reads a cache file, or says why it cannot be used. */
async function readCache(
  file: string,
  want: CacheKey,
  src: TensorSource,
  keys: string[],
  quantize: QuantizeOptions,
): Promise<Map<string, QuantizedTensor> | string> {
  let st: TensorSource;
  try {
    st = await openSafetensors(file);
  } catch (err) {
    return (err as Error).message;
  }
  try {
    for (const [k, v] of Object.entries(want)) {
      if (st.metadata[k] !== v)
        return `it was made for another ${k.replace("_", " ")} (${st.metadata[k]} ≠ ${v})`;
    }
    if (quantize.doubleQuant) {
      const map = (await st.getF32("dynamic_map")).data;
      if (map.some((v, i) => v !== DYNAMIC_MAP_8BIT[i])) return "its 8-bit absmax map is not toxlora's";
    }
    const out = new Map<string, QuantizedTensor>();
    for (const key of keys) {
      const shape = src.info(key).shape;
      if (!isQuantizable(key, shape)) continue;
      if (!st.has(`${key}.codes`)) return `it has no tensor "${key}"`;
      const [n, k] = shape;
      const layout = quantLayout(key, n, k, quantize);
      const codes = await st.getBytes(`${key}.codes`);
      const { scales, doubleQuant } = await readScales(st, key);
      if (codes.length !== layout.codesLength || scales.length !== layout.scalesLength) {
        return `tensor "${key}" has the wrong size`;
      }
      const q: QuantizedTensor = { attrs: layout.attrs, codesShape: layout.codesShape, codes, scales };
      if (doubleQuant) q.doubleQuant = doubleQuant;
      out.set(key, q);
    }
    if (dataDigest(out) !== st.metadata.sha256) return "its data does not match its SHA-256 (corrupt)";
    return out;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await st.close();
  }
}

/**
 * Reads a checkpoint with its backbone linear weights quantized (see the file comment): float32
 * for everything else. The result's `getQuantized` gives the quantized tensors.
 */
export async function readQuantizedWeights(
  dirOrFile: string,
  opts: QuantizedLoadOptions,
): Promise<WeightMap> {
  const quantize = opts.quantize;
  const scheme = quantize.scheme;
  if (scheme === "none") throw new Error("readQuantizedWeights: scheme none; use readWeights");
  const bs = blockSizeOf(quantize);
  const src = await openCheckpoint(dirOrFile);
  try {
    const keys = src.keys().filter((k) => !opts.skip?.(k));
    const cacheDir = opts.cacheDir === undefined ? toxloraCacheDir() : opts.cacheDir;
    let cacheFile: string | undefined;
    let want: CacheKey | undefined;
    let cached: Map<string, QuantizedTensor> | undefined;
    if (cacheDir) {
      want = {
        format: CACHE_FORMAT,
        checkpoint: await checkpointHash(checkpointFiles(src, dirOrFile), cacheDir, opts.onHashProgress),
        scheme,
        block_size: String(bs),
        double_quant: quantize.doubleQuant ? "1" : "0",
      };
      const name = createHash("sha256").update(JSON.stringify(want)).digest("hex").slice(0, 32);
      cacheFile = path.join(cacheDir, "quantized", `${name}.safetensors`);
      if (existsSync(cacheFile)) {
        const got = await readCache(cacheFile, want, src, keys, quantize);
        if (typeof got === "string") {
          const note = `quantized cache ${cacheFile} not used: ${got}; rebuilding it`;
          if (opts.onNote) opts.onNote(note);
          else process.emitWarning(note, "ToxloraWarning");
        } else cached = got;
      }
    }

    const tensors = new Map<string, F32Tensor>();
    const quantized = new Map<string, QuantizedTensor>();
    for (const key of keys) {
      const shape = src.info(key).shape;
      if (isQuantizable(key, shape)) {
        const q = cached?.get(key);
        quantized.set(
          key,
          q ?? quantizeWeight(key, (await src.getF32(key)).data, shape[0], shape[1], quantize),
        );
      } else {
        tensors.set(key, await src.getF32(key));
      }
      opts.onProgress?.(tensors.size + quantized.size, keys.length);
    }
    if (cacheFile && want && !cached) await writeCache(cacheFile, want, quantized);
    return new WeightMap(tensors, dirOrFile, quantized);
  } finally {
    await src.close();
  }
}

async function writeCache(
  file: string,
  key: CacheKey,
  quantized: Map<string, QuantizedTensor>,
): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tensors = new Map<
    string,
    { shape: number[]; data: Uint8Array | Float32Array; dtype: "U8" | "F32" }
  >();
  const f32 = (data: Float32Array) => ({ shape: [data.length], data, dtype: "F32" as const });
  const u8 = (data: Uint8Array) => ({ shape: [data.length], data, dtype: "U8" as const });
  if (key.double_quant === "1") tensors.set("dynamic_map", f32(DYNAMIC_MAP_8BIT));
  for (const [k, q] of quantized) {
    tensors.set(`${k}.codes`, u8(q.codes));
    const dq = q.doubleQuant;
    if (dq) {
      tensors.set(`${k}.absmax_codes`, u8(dq.absmaxCodes));
      tensors.set(`${k}.absmax2`, f32(dq.absmax2));
      tensors.set(`${k}.absmax_offset`, f32(Float32Array.of(dq.offset)));
    } else tensors.set(`${k}.scales`, f32(q.scales));
  }
  await writeSafetensors(file, tensors, { ...key, sha256: dataDigest(quantized) });
}
