// Atomic file writes: write everything to `<file>.tmp-<pid>-<n>`, then rename over the target.
// A reader (or a crash) therefore sees either the old file or the complete new one, never half of it.

import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";

let tmpCounter = 0;

/** A fresh temporary name for writing `file`: `<file>.tmp-<pid>-<n>` (unique within this process). */
export function tmpPathFor(file: string): string {
  tmpCounter += 1;
  return `${file}.tmp-${process.pid}-${tmpCounter}`;
}

/**
 * A file being written atomically. Write with {@link AtomicWriter.write}, then either
 * {@link AtomicWriter.commit} (flush, close, rename into place) or {@link AtomicWriter.abort}
 * (close and delete the temporary file).
 */
export interface AtomicWriter {
  /** Final path of the file. */
  readonly path: string;
  /** Bytes written so far. */
  readonly bytesWritten: number;
  /** Append bytes (the whole chunk is written before the promise resolves). */
  write(chunk: Uint8Array): Promise<void>;
  /** Flush to disk and rename the temporary file to {@link AtomicWriter.path}. */
  commit(): Promise<void>;
  /** Discard everything written; the target file is left untouched. Safe to call twice. */
  abort(): Promise<void>;
}

/**
 * Opens `<file>.tmp-<pid>-<n>` for an atomic write of `file`, creating missing parent folders.
 *
 * @example
 * const w = await openAtomicWriter("out/big.bin");
 * try { for (const chunk of chunks) await w.write(chunk); await w.commit(); }
 * catch (e) { await w.abort(); throw e; }
 */
export async function openAtomicWriter(file: string): Promise<AtomicWriter> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = tmpPathFor(file);
  let handle: FileHandle | undefined = await open(tmp, "w");
  let written = 0;
  return {
    path: file,
    get bytesWritten() {
      return written;
    },
    async write(chunk: Uint8Array) {
      if (!handle) throw new Error(`${file}: write after commit/abort`);
      // FileHandle.write may write fewer bytes than asked; loop until the chunk is out.
      let off = 0;
      while (off < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, off, chunk.byteLength - off);
        off += bytesWritten;
      }
      written += chunk.byteLength;
    },
    async commit() {
      if (!handle) throw new Error(`${file}: commit after commit/abort`);
      const h = handle;
      handle = undefined;
      try {
        await h.sync();
      } finally {
        await h.close();
      }
      await rename(tmp, file);
    },
    async abort() {
      const h = handle;
      handle = undefined;
      if (h) await h.close().catch(() => {});
      await rm(tmp, { force: true });
    },
  };
}

/** Writes `data` to `file` atomically (temporary file + rename); creates missing parent folders. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const w = await openAtomicWriter(file);
  try {
    await w.write(typeof data === "string" ? Buffer.from(data, "utf8") : data);
    await w.commit();
  } catch (err) {
    await w.abort();
    throw err;
  }
}

/**
 * Synchronous {@link writeFileAtomic} with fsync, for code that must finish the write before it
 * returns (a state file saved between pages that a Ctrl-C may interrupt).
 */
export function writeFileAtomicSync(file: string, data: string | Uint8Array): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = tmpPathFor(file);
  const fd = openSync(tmp, "w");
  try {
    try {
      writeAllSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd); // also when the write fails (disk full), so the descriptor is not leaked
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Writes all of `data` to `fd` (writeSync may write fewer bytes than asked, so it loops). */
export function writeAllSync(fd: number, data: string | Uint8Array): void {
  const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
}

/** Synchronous {@link writeJsonAtomic} (2-space indent, trailing newline). */
export function writeJsonAtomicSync(file: string, value: unknown): void {
  writeFileAtomicSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Writes `value` as JSON (2-space indent, trailing newline) to `file` atomically.
 * With `sortKeys`, object keys are written in sorted order at every level (as Python's
 * `json.dumps(sort_keys=True)` does), which gives stable, diff-friendly files.
 */
export async function writeJsonAtomic(
  file: string,
  value: unknown,
  options: { indent?: number; sortKeys?: boolean } = {},
): Promise<void> {
  const v = options.sortKeys ? sortKeysDeep(value) : value;
  await writeFileAtomic(file, `${JSON.stringify(v, null, options.indent ?? 2)}\n`);
}

function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeysDeep((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}
