// File helpers shared by fetch, import and score: atomic whole-file writes, durable appends, and
// reading back (and repairing) a JSONL file that a previous run may have left half-written.
import {
  closeSync,
  createReadStream,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
} from "node:fs";
import { dirname } from "node:path";
import { createInterface } from "node:readline";
import { tmpPathFor, writeAllSync } from "../io/atomic.js";

/** Create the directory an output file goes into. */
export function ensureParentDir(file: string): void {
  mkdirSync(dirname(file), { recursive: true });
}

/** Append complete lines and fsync, so a crash after this returns never loses them. */
export function appendDurable(fd: number, text: string): void {
  if (text === "") return;
  writeAllSync(fd, text);
  fsyncSync(fd);
}

/**
 * If `file` ends in an incomplete line (a crash mid-write), cut it off. Returns the number of bytes
 * removed (0 when the file is missing, empty or already ends with a newline).
 */
export function truncatePartialLine(file: string): number {
  if (!existsSync(file)) return 0;
  const size = statSync(file).size;
  if (size === 0) return 0;
  const fd = openSync(file, "r");
  try {
    const chunk = Buffer.alloc(64 * 1024);
    let end = size;
    // Scan backwards for the last newline.
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const n = readSync(fd, chunk, 0, end - start, start);
      const nl = chunk.subarray(0, n).lastIndexOf(0x0a);
      if (nl >= 0) {
        const keep = start + nl + 1;
        if (keep === size) return 0;
        truncateSync(file, keep);
        return size - keep;
      }
      end = start;
    }
    // No newline at all: the whole file is one partial line.
    truncateSync(file, 0);
    return size;
  } finally {
    closeSync(fd);
  }
}

/** The parsed values of a JSONL file with their 1-based line numbers, lazily. Blank lines are skipped. */
export async function* jsonLines(file: string): AsyncGenerator<{ value: unknown; line: number }> {
  const rl = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const raw of rl) {
      line++;
      const text = line === 1 ? raw.replace(/^\uFEFF/, "") : raw;
      if (text.trim() === "") continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new Error(`${file}:${line}: invalid JSON (${(err as Error).message})`);
      }
      yield { value, line };
    }
  } finally {
    rl.close();
  }
}

/** Read a JSONL file line by line; `onRow` gets the parsed value and its 1-based line number. Blank lines are skipped. */
export async function forEachJsonLine(
  file: string,
  onRow: (value: unknown, line: number) => void | Promise<void>,
): Promise<number> {
  let rows = 0;
  for await (const { value, line } of jsonLines(file)) {
    await onRow(value, line);
    rows++;
  }
  return rows;
}

/** The `id` of every row of an existing tweets JSONL file (empty when the file does not exist). */
export async function readIds(file: string): Promise<Set<string>> {
  const ids = new Set<string>();
  if (!existsSync(file)) return ids;
  await forEachJsonLine(file, (value, line) => {
    const id = (value as { id?: unknown } | null)?.id;
    if (typeof id !== "string") throw new Error(`${file}:${line}: field "id": missing or not a string`);
    ids.add(id);
  });
  return ids;
}

/** A line writer into a temporary file that becomes `file` only on `commit()` (atomic output). */
export class AtomicLineWriter {
  private readonly tmp: string;
  private readonly fd: number;
  private closed = false;

  constructor(readonly file: string) {
    ensureParentDir(file);
    this.tmp = tmpPathFor(file);
    this.fd = openSync(this.tmp, "w");
  }

  write(text: string): void {
    writeAllSync(this.fd, text);
  }

  /** fsync, close and rename into place. */
  commit(): void {
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.closed = true;
    renameSync(this.tmp, this.file);
  }

  /** Drop the temporary file (after an error). */
  abort(): void {
    if (!this.closed) {
      closeSync(this.fd);
      this.closed = true;
    }
    rmSync(this.tmp, { force: true });
  }
}
