// safetensors reader and writer (https://huggingface.co/docs/safetensors).
//
// File layout: 8-byte little-endian header length N, N bytes of JSON header, then the raw
// little-endian tensor bytes. The header maps each tensor name to
// { dtype, shape, data_offsets: [begin, end] } (offsets relative to the end of the header)
// plus an optional "__metadata__" string→string map.
//
// The reader never loads a whole file: it parses the header and reads one tensor's byte range
// from an open file handle when asked, so a 7 GB checkpoint is held in memory at most once
// (as the Float32Arrays the caller keeps). The writer streams tensors one by one into a
// temporary file and renames it into place.

import type { FileHandle } from "node:fs/promises";
import { open, readdir, readFile, stat } from "node:fs/promises";
import { endianness } from "node:os";
import path from "node:path";
import { openAtomicWriter } from "./atomic.js";

if (endianness() !== "LE") {
  // Typed-array views below assume the host byte order equals the file's (little-endian).
  throw new Error("toxlora's safetensors code needs a little-endian CPU");
}

/** Element types of the safetensors format that toxlora can convert to Float32. */
export type SafetensorsDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

/** Bytes per element of every dtype the format defines (used to validate headers). */
const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  U64: 8,
  I32: 4,
  U32: 4,
  I16: 2,
  U16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** The dtypes {@link TensorSource.getF32} converts (others can still be read raw with `getBytes`). */
export const F32_CONVERTIBLE_DTYPES: readonly SafetensorsDtype[] = [
  "F64",
  "F32",
  "F16",
  "BF16",
  "I64",
  "I32",
  "I16",
  "I8",
  "U8",
  "BOOL",
];

/** Header entry of one tensor. */
export interface TensorInfo {
  /** safetensors dtype string as stored, e.g. "F32", "BF16". */
  dtype: string;
  /** Dimensions; `[]` for a scalar. */
  shape: number[];
  /** Size of the tensor's data in the file. */
  byteLength: number;
  /** File the tensor lives in (useful for sharded checkpoints). */
  file: string;
}

/** A tensor converted to float32, row-major. */
export interface F32Tensor {
  data: Float32Array;
  shape: number[];
}

/**
 * Read access to named tensors, from one safetensors file ({@link openSafetensors}) or from a
 * whole checkpoint folder, sharded or not ({@link openCheckpoint}). Tensors are read from disk
 * only when asked for. Call {@link TensorSource.close} when done.
 */
export interface TensorSource {
  /** The file or folder this source reads. */
  readonly path: string;
  /** The `__metadata__` map of the file (of the first shard for sharded checkpoints). */
  readonly metadata: Record<string, string>;
  /** Tensor names, in file order. */
  keys(): string[];
  /** Whether a tensor with this name exists. */
  has(key: string): boolean;
  /** dtype, shape and size of a tensor (throws naming the file if the key is absent). */
  info(key: string): TensorInfo;
  /** Reads a tensor and converts it to Float32Array (F32, F16, BF16, F64, integer and bool dtypes). */
  getF32(key: string): Promise<F32Tensor>;
  /** Reads a tensor's raw little-endian bytes, whatever its dtype. */
  getBytes(key: string): Promise<Uint8Array>;
  /** Closes the underlying file handle(s). */
  close(): Promise<void>;
}

/** Number of elements of a shape (1 for a scalar `[]`). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// Headers larger than this are rejected as corrupt (the reference implementation uses 100 MB).
const MAX_HEADER_BYTES = 100_000_000;
// Reads and conversions go through buffers of at most this many bytes, so converting a
// BF16 tensor needs only this much temporary memory besides the Float32Array result.
const CHUNK_BYTES = 16 * 1024 * 1024;

interface Entry {
  dtype: string;
  shape: number[];
  begin: number; // absolute file offset
  end: number;
}

function describe(v: unknown): string {
  return v === undefined ? "nothing" : JSON.stringify(v);
}

/** Parses and validates a header; `dataStart` is 8 + header length. */
function parseHeader(
  file: string,
  headerBytes: Uint8Array,
  dataStart: number,
  fileSize: number,
): { entries: Map<string, Entry>; metadata: Record<string, string> } {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(headerBytes).toString("utf8"));
  } catch (err) {
    throw new Error(`${file}: bad safetensors header: not valid JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new Error(`${file}: bad safetensors header: expected a JSON object`);
  }
  const entries = new Map<string, Entry>();
  const metadata: Record<string, string> = {};
  const dataSize = fileSize - dataStart;
  for (const [key, raw] of Object.entries(json as Record<string, unknown>)) {
    if (key === "__metadata__") {
      if (raw === null) continue;
      if (typeof raw !== "object" || Array.isArray(raw)) {
        throw new Error(`${file}: bad safetensors header: "__metadata__" must be an object of strings`);
      }
      for (const [mk, mv] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof mv !== "string") {
          throw new Error(
            `${file}: bad safetensors header: __metadata__.${mk} must be a string, got ${describe(mv)}`,
          );
        }
        metadata[mk] = mv;
      }
      continue;
    }
    const where = `${file}: tensor "${key}"`;
    if (raw === null || typeof raw !== "object") throw new Error(`${where}: header entry must be an object`);
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (typeof dtype !== "string")
      throw new Error(`${where}: "dtype" must be a string, got ${describe(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${where}: "shape" must be a list of non-negative integers, got ${describe(shape)}`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      throw new Error(
        `${where}: "data_offsets" must be [begin, end] with 0 <= begin <= end, got ${describe(offsets)}`,
      );
    }
    const [b, e] = offsets as [number, number];
    const size = DTYPE_BYTES[dtype];
    if (size !== undefined && e - b !== numel(shape) * size) {
      throw new Error(
        `${where}: data_offsets [${b}, ${e}] hold ${e - b} bytes, but ${dtype} with shape [${shape.join(", ")}] needs ${numel(shape) * size}`,
      );
    }
    if (e > dataSize) {
      throw new Error(
        `${file}: truncated: tensor "${key}" ends at data byte ${e} but the file has only ${dataSize} data bytes ` +
          `(${fileSize} bytes in all); the download or copy was probably cut short`,
      );
    }
    entries.set(key, { dtype, shape: shape as number[], begin: dataStart + b, end: dataStart + e });
  }
  // Tensors must not share bytes (the format forbids it, and it usually means a corrupt header).
  const sorted = [...entries.entries()].sort((x, y) => x[1].begin - y[1].begin);
  for (let i = 1; i < sorted.length; i++) {
    const [pk, prev] = sorted[i - 1];
    const [ck, cur] = sorted[i];
    if (cur.begin < prev.end) {
      throw new Error(
        `${file}: bad safetensors header: tensors "${pk}" and "${ck}" overlap in the data section`,
      );
    }
  }
  return { entries, metadata };
}

/** Reads exactly `target.byteLength` bytes at `position`, in pieces below the 2 GB read limit. */
async function readFully(fh: FileHandle, target: Uint8Array, position: number, what: string): Promise<void> {
  const maxRead = 1 << 30;
  let off = 0;
  while (off < target.byteLength) {
    const len = Math.min(target.byteLength - off, maxRead);
    const { bytesRead } = await fh.read(target, off, len, position + off);
    if (bytesRead === 0) throw new Error(`${what}: unexpected end of file (truncated?)`);
    off += bytesRead;
  }
}

let f16Table: Float32Array | undefined;
/** Lookup table: float16 bit pattern → float32 value (256 KB, built on first use). */
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exp = (h >> 10) & 0x1f;
      const man = h & 0x3ff;
      if (exp === 0) f16Table[h] = sign * man * 2 ** -24;
      else if (exp === 31) f16Table[h] = man ? Number.NaN : sign * Number.POSITIVE_INFINITY;
      else f16Table[h] = sign * (1 + man / 1024) * 2 ** (exp - 15);
    }
  }
  return f16Table;
}

/** Converts float16 bit patterns to float32 values (exact). */
export function f16BitsToF32(
  bits: Uint16Array,
  out: Float32Array = new Float32Array(bits.length),
): Float32Array {
  const t = f16ToF32Table();
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]];
  return out;
}

/** Converts bfloat16 bit patterns to float32 values (exact: bf16 is the top half of a float32). */
export function bf16BitsToF32(
  bits: Uint16Array,
  out: Float32Array = new Float32Array(bits.length),
): Float32Array {
  const o32 = new Uint32Array(out.buffer, out.byteOffset, bits.length);
  for (let i = 0; i < bits.length; i++) o32[i] = bits[i] << 16;
  return out;
}

/** Rounds one float32 bit pattern to float16 bits (round to nearest even; overflow → ±Inf). */
function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let man = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 | (man >>> 13) : 0); // Inf, or NaN kept quiet
  const e = exp - 127 + 15; // re-biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): value = (1.man) * 2^(exp-127) = m * 2^-24, m = M >> (14 - e).
    if (e < -10) return sign;
    man |= 0x800000;
    const shift = 14 - e;
    let h = man >>> shift;
    const rem = man & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (man >>> 13);
  const rem = man & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is still correct
  return sign | h;
}

/** Converts float32 values to float16 bit patterns (round to nearest even). */
export function f32ToF16Bits(
  values: Float32Array,
  out: Uint16Array = new Uint16Array(values.length),
): Uint16Array {
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32BitsToF16Bits(u[i]);
  return out;
}

/** Converts float32 values to bfloat16 bit patterns (round to nearest even; NaN stays NaN). */
export function f32ToBf16Bits(
  values: Float32Array,
  out: Uint16Array = new Uint16Array(values.length),
): Uint16Array {
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) {
    const x = u[i];
    if ((x & 0x7fffffff) > 0x7f800000) out[i] = (x >>> 16) | 0x40;
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** Converts `count` elements of `dtype` from `src` (aligned bytes) into `out` starting at `at`. */
function convertToF32(dtype: string, src: ArrayBuffer, count: number, out: Float32Array, at: number): void {
  switch (dtype) {
    case "F16":
      f16BitsToF32(new Uint16Array(src, 0, count), out.subarray(at, at + count));
      return;
    case "BF16":
      bf16BitsToF32(new Uint16Array(src, 0, count), out.subarray(at, at + count));
      return;
    case "F64":
      out.set(new Float64Array(src, 0, count), at);
      return;
    case "I32":
      out.set(new Int32Array(src, 0, count), at);
      return;
    case "I16":
      out.set(new Int16Array(src, 0, count), at);
      return;
    case "I8":
      out.set(new Int8Array(src, 0, count), at);
      return;
    case "U8":
    case "BOOL":
      out.set(new Uint8Array(src, 0, count), at);
      return;
    case "I64": {
      const v = new BigInt64Array(src, 0, count);
      for (let i = 0; i < count; i++) out[at + i] = Number(v[i]);
      return;
    }
    default:
      throw new Error(`unreachable dtype ${dtype}`);
  }
}

/** One open safetensors file. Create with {@link openSafetensors}. */
class SafetensorsFile implements TensorSource {
  constructor(
    readonly path: string,
    private fh: FileHandle | undefined,
    private readonly entries: Map<string, Entry>,
    readonly metadata: Record<string, string>,
  ) {}

  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  private entry(key: string): Entry {
    const e = this.entries.get(key);
    if (!e)
      throw new Error(`${this.path}: no tensor named "${key}" (the file has ${this.entries.size} tensors)`);
    return e;
  }

  info(key: string): TensorInfo {
    const e = this.entry(key);
    return { dtype: e.dtype, shape: [...e.shape], byteLength: e.end - e.begin, file: this.path };
  }

  private handle(): FileHandle {
    if (!this.fh) throw new Error(`${this.path}: file already closed`);
    return this.fh;
  }

  async getBytes(key: string): Promise<Uint8Array> {
    const e = this.entry(key);
    const out = new Uint8Array(e.end - e.begin);
    await readFully(this.handle(), out, e.begin, `${this.path}: tensor "${key}"`);
    return out;
  }

  async getF32(key: string): Promise<F32Tensor> {
    const e = this.entry(key);
    const what = `${this.path}: tensor "${key}"`;
    const n = numel(e.shape);
    const out = new Float32Array(n);
    if (e.dtype === "F32") {
      // Read straight into the result: no second copy.
      await readFully(this.handle(), new Uint8Array(out.buffer), e.begin, what);
      return { data: out, shape: [...e.shape] };
    }
    if (!(F32_CONVERTIBLE_DTYPES as readonly string[]).includes(e.dtype)) {
      throw new Error(
        `${what}: unsupported dtype "${e.dtype}" (toxlora converts ${F32_CONVERTIBLE_DTYPES.join(", ")} to float32)`,
      );
    }
    const size = DTYPE_BYTES[e.dtype];
    const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / size));
    const buf = new ArrayBuffer(Math.min(n, perChunk) * size);
    for (let at = 0; at < n; at += perChunk) {
      const count = Math.min(perChunk, n - at);
      await readFully(this.handle(), new Uint8Array(buf, 0, count * size), e.begin + at * size, what);
      convertToF32(e.dtype, buf, count, out, at);
    }
    return { data: out, shape: [...e.shape] };
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}

/**
 * Opens a safetensors file and parses its header; tensor data is read later, on demand.
 * Throws a clear error (file, tensor, problem) for truncated files and malformed headers.
 *
 * @example
 * const st = await openSafetensors("model.safetensors");
 * try {
 *   console.log(st.keys(), st.info("embeddings.word_embeddings.weight"));
 *   const { data, shape } = await st.getF32("embeddings.word_embeddings.weight");
 * } finally { await st.close(); }
 */
export async function openSafetensors(file: string): Promise<TensorSource> {
  const fh = await open(file, "r");
  try {
    const { size } = await fh.stat();
    if (size < 8) throw new Error(`${file}: truncated: ${size} bytes, a safetensors file has at least 8`);
    const lenBuf = new Uint8Array(8);
    await readFully(fh, lenBuf, 0, file);
    const headerLen = Buffer.from(lenBuf).readBigUInt64LE(0);
    if (headerLen > BigInt(MAX_HEADER_BYTES)) {
      throw new Error(
        `${file}: bad safetensors header: declared header length ${headerLen} is too large (not a safetensors file?)`,
      );
    }
    const n = Number(headerLen);
    if (8 + n > size) {
      throw new Error(
        `${file}: truncated: header declares ${n} bytes but the file has only ${size - 8} after the length`,
      );
    }
    const header = new Uint8Array(n);
    await readFully(fh, header, 8, file);
    const { entries, metadata } = parseHeader(file, header, 8 + n, size);
    return new SafetensorsFile(file, fh, entries, metadata);
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Reads every tensor of a (small) safetensors file as float32. */
export async function readSafetensors(file: string): Promise<Map<string, F32Tensor>> {
  const st = await openSafetensors(file);
  try {
    const out = new Map<string, F32Tensor>();
    for (const k of st.keys()) out.set(k, await st.getF32(k));
    return out;
  } finally {
    await st.close();
  }
}

/** Several shards presented as one key space (see {@link openCheckpoint}). */
class ShardedSource implements TensorSource {
  constructor(
    readonly path: string,
    private readonly shards: TensorSource[],
    private readonly owner: Map<string, TensorSource>,
  ) {}

  get metadata(): Record<string, string> {
    return this.shards[0]?.metadata ?? {};
  }

  keys(): string[] {
    return [...this.owner.keys()];
  }

  has(key: string): boolean {
    return this.owner.has(key);
  }

  private shardOf(key: string): TensorSource {
    const s = this.owner.get(key);
    if (!s)
      throw new Error(
        `${this.path}: no tensor named "${key}" in the checkpoint (${this.owner.size} tensors)`,
      );
    return s;
  }

  info(key: string): TensorInfo {
    return this.shardOf(key).info(key);
  }

  getF32(key: string): Promise<F32Tensor> {
    return this.shardOf(key).getF32(key);
  }

  getBytes(key: string): Promise<Uint8Array> {
    return this.shardOf(key).getBytes(key);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
  }
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Name of the weights file of an unsharded Hugging Face checkpoint. */
export const SAFETENSORS_WEIGHTS_NAME = "model.safetensors";
/** Name of the shard index of a sharded Hugging Face checkpoint. */
export const SAFETENSORS_INDEX_NAME = "model.safetensors.index.json";

/**
 * Opens the weights of a Hugging Face checkpoint folder as one {@link TensorSource}:
 * `model.safetensors.index.json` (sharded; its `weight_map` says which shard holds each
 * tensor) or `model.safetensors`. A path to a single `.safetensors` file is opened directly.
 *
 * @example
 * const ckpt = await openCheckpoint("/models/llm-jp-3-1.8b");
 * const { data, shape } = await ckpt.getF32("model.embed_tokens.weight");
 * await ckpt.close();
 */
export async function openCheckpoint(dirOrFile: string): Promise<TensorSource> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(dirOrFile);
  } catch {
    throw new Error(`${dirOrFile}: no such checkpoint file or folder`);
  }
  if (st.isFile()) return openSafetensors(dirOrFile);

  const indexFile = path.join(dirOrFile, SAFETENSORS_INDEX_NAME);
  if (await isFile(indexFile)) return openSharded(indexFile);
  const single = path.join(dirOrFile, SAFETENSORS_WEIGHTS_NAME);
  if (await isFile(single)) return openSafetensors(single);

  const names = await readdir(dirOrFile);
  const torchOnly = names.filter((n) => n.endsWith(".bin") || n.endsWith(".pt") || n.endsWith(".pth"));
  const hint = torchOnly.length
    ? ` It has PyTorch pickle weights (${torchOnly.join(", ")}), which toxlora does not read: convert them to safetensors first.`
    : "";
  throw new Error(
    `${dirOrFile}: no ${SAFETENSORS_WEIGHTS_NAME} or ${SAFETENSORS_INDEX_NAME} in this folder.${hint}`,
  );
}

async function openSharded(indexFile: string): Promise<TensorSource> {
  const dir = path.dirname(indexFile);
  let index: unknown;
  try {
    index = JSON.parse(await readFile(indexFile, "utf8"));
  } catch (err) {
    throw new Error(`${indexFile}: not valid JSON (${(err as Error).message})`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (weightMap === null || typeof weightMap !== "object" || Array.isArray(weightMap)) {
    throw new Error(`${indexFile}: field "weight_map" must be an object mapping tensor names to shard files`);
  }
  const map = weightMap as Record<string, unknown>;
  const shardNames: string[] = [];
  for (const [key, shard] of Object.entries(map)) {
    if (
      typeof shard !== "string" ||
      shard === "" ||
      path.isAbsolute(shard) ||
      shard.split(/[\\/]/).includes("..")
    ) {
      throw new Error(
        `${indexFile}: weight_map["${key}"] must be a shard file name inside the folder, got ${describe(shard)}`,
      );
    }
    if (!shardNames.includes(shard)) shardNames.push(shard);
  }
  const shards: TensorSource[] = [];
  try {
    for (const name of shardNames) {
      const file = path.join(dir, name);
      if (!(await isFile(file)))
        throw new Error(`${indexFile}: shard "${name}" listed in weight_map is missing (${file})`);
      shards.push(await openSafetensors(file));
    }
    const byName = new Map(shardNames.map((n, i) => [n, shards[i]]));
    const owner = new Map<string, TensorSource>();
    for (const [key, shard] of Object.entries(map)) {
      const src = byName.get(shard as string) as TensorSource;
      if (!src.has(key)) {
        throw new Error(
          `${indexFile}: weight_map puts tensor "${key}" in "${shard}", but that shard has no such tensor`,
        );
      }
      owner.set(key, src);
    }
    return new ShardedSource(dir, shards, owner);
  } catch (err) {
    await Promise.all(shards.map((s) => s.close()));
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

/**
 * Tensor data accepted by {@link writeSafetensors}. Float arrays are converted to the target
 * dtype (F32, F16, BF16 or F64); Int32Array writes I32 (or I64), BigInt64Array writes I64; a
 * Uint8Array is written byte for byte (raw little-endian data of the declared dtype, e.g. what
 * {@link TensorSource.getBytes} returns), which also covers U8 and BOOL.
 */
export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/**
 * Produces a tensor's data when the writer reaches it, so only one tensor (or one chunk) needs to
 * be in memory at a time. It may return the whole array, or an (async) iterable of consecutive
 * chunks whose lengths add up to the tensor's size.
 */
export type TensorProducer = () =>
  | TensorData
  | Promise<TensorData>
  | AsyncIterable<TensorData>
  | Iterable<TensorData>;

/** One tensor to write. */
export interface TensorToWrite {
  /** Dimensions; `[]` for a scalar. */
  shape: readonly number[];
  /** The data, or a function producing it on demand. */
  data: TensorData | TensorProducer;
  /**
   * Stored dtype. Defaults to the data's own type (Float32Array → F32, Float64Array → F64,
   * Int32Array → I32, BigInt64Array → I64, Uint8Array → U8), and to F32 for producers.
   */
  dtype?: SafetensorsDtype;
}

/** Options of {@link writeSafetensors}. */
export interface WriteSafetensorsOptions {
  /** Called after each chunk with the bytes written so far and the final file size. */
  onProgress?: (bytesWritten: number, totalBytes: number) => void;
}

function naturalDtype(data: TensorData | TensorProducer): SafetensorsDtype {
  if (data instanceof Float64Array) return "F64";
  if (data instanceof Int32Array) return "I32";
  if (data instanceof BigInt64Array) return "I64";
  if (data instanceof Uint8Array) return "U8";
  return "F32";
}

function dataKind(d: TensorData): string {
  return d.constructor.name;
}

/**
 * Encodes one chunk of data as little-endian `dtype` bytes. Conversions yield pieces of a few
 * MB, so converting a large tensor needs little temporary memory.
 */
function* encodeChunk(data: TensorData, dtype: SafetensorsDtype, where: string): Generator<Uint8Array> {
  const size = DTYPE_BYTES[dtype];
  if (data instanceof Uint8Array) {
    if (data.byteLength % size !== 0) {
      throw new Error(
        `${where}: raw byte chunk of ${data.byteLength} bytes is not a whole number of ${dtype} elements`,
      );
    }
    yield data;
    return;
  }
  const same =
    (dtype === "F32" && data instanceof Float32Array) ||
    (dtype === "F64" && data instanceof Float64Array) ||
    (dtype === "I32" && data instanceof Int32Array) ||
    (dtype === "I64" && data instanceof BigInt64Array);
  if (same) {
    yield new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return;
  }
  const isFloat = data instanceof Float32Array || data instanceof Float64Array;
  const ok =
    (isFloat && (dtype === "F32" || dtype === "F64" || dtype === "F16" || dtype === "BF16")) ||
    (data instanceof Int32Array && dtype === "I64");
  if (!ok) throw new Error(`${where}: cannot write ${dataKind(data)} data as ${dtype}`);

  const per = Math.floor(CHUNK_BYTES / 8);
  for (let at = 0; at < data.length; at += per) {
    const count = Math.min(per, data.length - at);
    const out = new ArrayBuffer(count * size);
    if (data instanceof Int32Array) {
      const o = new BigInt64Array(out);
      for (let i = 0; i < count; i++) o[i] = BigInt(data[at + i]);
    } else if (dtype === "F64") {
      new Float64Array(out).set(data.subarray(at, at + count));
    } else {
      // F32, F16 or BF16 from floats: go through float32 first.
      const f32 =
        data instanceof Float32Array
          ? data.subarray(at, at + count)
          : Float32Array.from(data.subarray(at, at + count));
      if (dtype === "F32") new Float32Array(out).set(f32);
      else if (dtype === "F16") f32ToF16Bits(f32, new Uint16Array(out));
      else f32ToBf16Bits(f32, new Uint16Array(out));
    }
    yield new Uint8Array(out);
  }
}

function isTensorData(x: unknown): x is TensorData {
  return ArrayBuffer.isView(x);
}

/** Turns a tensor's `data` (array or producer) into a stream of chunks. */
async function* chunksOf(data: TensorData | TensorProducer, where: string): AsyncGenerator<TensorData> {
  if (isTensorData(data)) {
    yield data;
    return;
  }
  const produced = await data();
  if (isTensorData(produced)) {
    yield produced;
    return;
  }
  if (produced && (Symbol.asyncIterator in produced || Symbol.iterator in produced)) {
    for await (const chunk of produced as AsyncIterable<TensorData>) {
      if (!isTensorData(chunk))
        throw new Error(`${where}: producer yielded a ${typeof chunk}, not a typed array`);
      yield chunk;
    }
    return;
  }
  throw new Error(`${where}: producer returned ${typeof produced}, not a typed array or an iterable of them`);
}

/**
 * Writes tensors to a safetensors file atomically (temporary file, then rename). The header is
 * padded with spaces to a multiple of 8 bytes so tensor data starts 8-byte aligned. Tensors are
 * stored in the given order; each `data` may be a producer function called only when that
 * tensor is written, which keeps memory bounded for multi-GB files.
 *
 * @param tensors name → tensor, as a plain object or a Map (insertion order is file order)
 * @param metadata optional `__metadata__` strings (e.g. `{ format: "pt" }`)
 *
 * @example
 * await writeSafetensors("head.safetensors", {
 *   "classifier.weight": { data: w, shape: [4, 768] },
 *   "classifier.bias": { data: b, shape: [4], dtype: "BF16" },
 * }, { format: "pt" });
 *
 * // Streaming: shapes up front, data made one tensor at a time.
 * await writeSafetensors("big.safetensors", new Map(specs.map((s) => [s.name,
 *   { shape: s.shape, dtype: "BF16", data: () => randomFloat32(numel(s.shape)) }])));
 */
export async function writeSafetensors(
  file: string,
  tensors: Record<string, TensorToWrite> | ReadonlyMap<string, TensorToWrite>,
  metadata?: Record<string, string>,
  options: WriteSafetensorsOptions = {},
): Promise<void> {
  const list: [string, TensorToWrite][] =
    tensors instanceof Map
      ? [...tensors.entries()]
      : Object.entries(tensors as Record<string, TensorToWrite>);

  // Build the header first: every offset is known from the shapes and dtypes alone.
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string")
        throw new Error(`${file}: metadata "${k}" must be a string, got ${describe(v)}`);
    }
    header.__metadata__ = metadata;
  }
  const plan: { name: string; t: TensorToWrite; dtype: SafetensorsDtype; bytes: number }[] = [];
  let offset = 0;
  for (const [name, t] of list) {
    const where = `${file}: tensor "${name}"`;
    if (name === "__metadata__") throw new Error(`${where}: this name is reserved`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${where}: shape must be a list of non-negative integers, got ${describe(t.shape)}`);
    }
    const dtype = t.dtype ?? naturalDtype(t.data);
    const size = DTYPE_BYTES[dtype];
    if (size === undefined || !(F32_CONVERTIBLE_DTYPES as readonly string[]).includes(dtype)) {
      throw new Error(`${where}: unsupported dtype "${dtype}" (use ${F32_CONVERTIBLE_DTYPES.join(", ")})`);
    }
    const bytes = numel(t.shape) * size;
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    plan.push({ name, t, dtype, bytes });
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const total = 8 + headerBytes.byteLength + offset;

  const w = await openAtomicWriter(file);
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(headerBytes.byteLength));
    await w.write(len);
    await w.write(headerBytes);
    for (const { name, t, dtype, bytes } of plan) {
      const where = `${file}: tensor "${name}"`;
      let written = 0;
      for await (const chunk of chunksOf(t.data, where)) {
        for (const piece of encodeChunk(chunk, dtype, where)) {
          if (written + piece.byteLength > bytes) {
            throw new Error(
              `${where}: got more data than shape [${t.shape.join(", ")}] ${dtype} holds (${bytes} bytes)`,
            );
          }
          await w.write(piece);
          written += piece.byteLength;
          options.onProgress?.(w.bytesWritten, total);
        }
      }
      if (written !== bytes) {
        throw new Error(
          `${where}: got ${written / DTYPE_BYTES[dtype]} elements, shape [${t.shape.join(", ")}] needs ${bytes / DTYPE_BYTES[dtype]}`,
        );
      }
    }
    await w.commit();
  } catch (err) {
    await w.abort();
    throw err;
  }
}
