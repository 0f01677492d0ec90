// Streaming input readers and a resumable JSONL writer for `toxlora predict`.
//
// Readers never hold the whole input: they decode the file (or stdin) chunk by chunk and yield one
// record at a time, so memory stays constant on a 1 GB input. Formats:
// - JSONL: one JSON object per line (blank lines skipped);
// - CSV / TSV: RFC 4180 with a header row; quoted fields may hold delimiters, "" escapes and newlines;
// - TXT: one text per line (blank lines skipped);
// - `-`: standard input, in any of these formats.
//
// The writer appends rows to `<out>.partial`, one `write` per batch, and renames it to `<out>` on
// close, so `<out>` only ever appears complete. After a crash, reopening with `resume: true` keeps the
// complete rows, cuts a torn last line, and appends after them.

import { isUtf8 } from "node:buffer";
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { type FileHandle, mkdir, open, readFile, rename, stat, truncate } from "node:fs/promises";
import { dirname, extname } from "node:path";
import type { Readable } from "node:stream";
import { DataError } from "../data/errors.js";
import { writeJsonAtomic } from "../io/atomic.js";
import { invalidUtf8Lines } from "../io/utf8.js";

/** Input formats accepted by {@link readInputs}. */
export type InputFormat = "jsonl" | "csv" | "tsv" | "txt";

/** One input to score. */
export interface InputRecord {
  /** 0-based position among the records of the input (blank lines do not count). */
  index: number;
  /** The id field's value, when the input has one. */
  id?: string | number;
  text: string;
  /** All fields of the record (JSONL: the parsed object; CSV: column → string; TXT: `{ text }`). */
  fields: Record<string, unknown>;
  /** 1-based line where the record starts. */
  line: number;
}

/** Options of {@link readInputs}. */
export interface ReadInputOptions {
  /**
   * Input format. Default: from the extension (.jsonl/.ndjson/.json → jsonl, .csv, .tsv/.tab, .txt);
   * otherwise (stdin, other extensions) sniffed: first non-blank character `{` → jsonl, else txt.
   * CSV and TSV on stdin must be given explicitly.
   */
  format?: InputFormat;
  /** Field (JSON key or CSV column) holding the text. Default `text`. */
  textField?: string;
  /**
   * Field holding the id. Default `id`, used when present. When set explicitly, every record must
   * have it.
   */
  idField?: string;
  /** Source for `-` (default `process.stdin`); lets tests and callers pipe any stream. */
  stdin?: Readable;
  /** Largest text accepted, in UTF-8 bytes: a longer one is a DataError naming its line. Default: no limit. */
  maxTextBytes?: number;
  /** Bytes that are not UTF-8 are an error (naming the line) instead of becoming U+FFFD. */
  strictUtf8?: boolean;
  /** Called once per line holding bytes that are not UTF-8 (decoded as U+FFFD). */
  onInvalidUtf8?: (line: number) => void;
}

/** Display name of stdin in error messages. */
const STDIN_NAME = "<stdin>";

function formatFromExtension(path: string): InputFormat | undefined {
  switch (extname(path).toLowerCase()) {
    case ".jsonl":
    case ".ndjson":
    case ".json":
      return "jsonl";
    case ".csv":
      return "csv";
    case ".tsv":
    case ".tab":
      return "tsv";
    case ".txt":
      return "txt";
    default:
      return undefined;
  }
}

/** Length of `buf` without a trailing incomplete UTF-8 sequence (kept for the next chunk). */
function completeLength(buf: Buffer): number {
  for (let k = 1; k <= Math.min(3, buf.length); k++) {
    const b = buf[buf.length - k] as number;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back for the lead byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > k ? buf.length - k : buf.length;
  }
  return buf.length;
}

/**
 * Decoded text chunks of a file or stream (UTF-8, BOM removed). Multi-byte characters split across
 * reads are kept whole; bytes that are not UTF-8 become U+FFFD and their lines are reported to
 * `onInvalid` (or, with `strict`, are an error).
 */
async function* textChunks(
  source: Readable,
  file: string,
  opts: { strict?: boolean; onInvalid?: (line: number) => void } = {},
): AsyncGenerator<string> {
  let first = true;
  let carry: Buffer = Buffer.alloc(0);
  let line = 1; // line at the start of the next bytes
  const decode = (bytes: Buffer): string => {
    if (!isUtf8(bytes)) {
      for (const bad of invalidUtf8Lines(bytes, line)) {
        if (opts.strict) {
          throw new DataError({
            file,
            line: bad,
            reason: "invalid UTF-8 (bytes that are not text in UTF-8)",
          });
        }
        opts.onInvalid?.(bad);
      }
    }
    for (let k = bytes.indexOf(10); k !== -1; k = bytes.indexOf(10, k + 1)) line++;
    let text = bytes.toString("utf8");
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    return text;
  };
  for await (const chunk of source as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    const all = carry.length > 0 ? Buffer.concat([carry, bytes]) : bytes;
    const n = completeLength(all);
    carry = all.subarray(n);
    const text = decode(all.subarray(0, n));
    if (text.length > 0) yield text;
  }
  if (carry.length > 0) yield decode(carry); // a truncated last character: invalid, reported as such
}

/** One line of text (without `\n` or a trailing `\r`) and its 1-based number. */
interface Line {
  text: string;
  line: number;
}

/**
 * The lines of a chunk stream, yielded in arrays (one per chunk): one async step per chunk instead
 * of one per line keeps reading fast.
 */
async function* lines(
  chunks: AsyncIterable<string>,
  maxChars = Number.POSITIVE_INFINITY,
  tooLong: (line: number) => Error = (line) => new Error(`line ${line} is too long`),
): AsyncGenerator<Line[]> {
  let rest = "";
  let line = 0;
  for await (const chunk of chunks) {
    // A line longer than any acceptable record is refused before it is held whole.
    if (rest.length + chunk.length > maxChars && !chunk.includes("\n")) throw tooLong(line + 1);
    const buf = rest + chunk;
    const out: Line[] = [];
    let start = 0;
    for (let nl = buf.indexOf("\n"); nl !== -1; nl = buf.indexOf("\n", start)) {
      line++;
      const end = nl > start && buf.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      out.push({ text: buf.slice(start, end), line });
      start = nl + 1;
    }
    rest = buf.slice(start);
    if (out.length > 0) yield out;
  }
  if (rest.length > 0) yield [{ text: rest.endsWith("\r") ? rest.slice(0, -1) : rest, line: line + 1 }];
}

/**
 * RFC 4180 records of a chunk stream, parsed incrementally (a quoted field may span chunks and lines).
 * Same rules as the dataset reader (src/data/readers.ts): `""` inside quotes is a quote, a quote inside
 * an unquoted field is kept as text, anything but a delimiter or line end after a closing quote is an
 * error, and blank lines are skipped. Records are yielded in arrays, one per chunk.
 */
interface CsvRecord {
  fields: string[];
  line: number;
}

async function* csvRecords(
  chunks: AsyncIterable<string>,
  file: string,
  delim: string,
): AsyncGenerator<CsvRecord[]> {
  let out: CsvRecord[] = [];
  let fields: string[] = [];
  let field = "";
  // start: at the start of a field; plain: unquoted field; quoted: inside quotes;
  // closed: just after a quote inside quotes (end of field, or the first half of "").
  // (`as`: the state changes inside the closures below, so TypeScript must not narrow it here.)
  let state = "start" as "start" | "plain" | "quoted" | "closed";
  let line = 1; // current physical line
  let recordLine = 1; // line where the current record started
  let quoteLine = 1; // line where the current quoted field opened
  let pendingCR = false; // a \r was seen in state "closed"; only \n may follow

  const endRecord = (): void => {
    fields.push(field);
    const done = fields;
    fields = [];
    field = "";
    state = "start";
    if (!(done.length === 1 && done[0] === "")) out.push({ fields: done, line: recordLine });
  };

  // Parse one chunk, appending finished records to `out`; the state carries over to the next chunk.
  const feed = (chunk: string): void => {
    // Next delimiter / newline positions in this chunk, advanced lazily so scanning stays linear.
    let nextDelim = chunk.indexOf(delim);
    let nextNL = chunk.indexOf("\n");
    let i = 0;
    while (i < chunk.length) {
      if (state === "quoted") {
        // Copy everything up to the next quote in one slice.
        const q = chunk.indexOf('"', i);
        const end = q === -1 ? chunk.length : q;
        const piece = chunk.slice(i, end);
        for (let k = piece.indexOf("\n"); k !== -1; k = piece.indexOf("\n", k + 1)) line++;
        field += piece;
        if (q === -1) break;
        state = "closed";
        i = q + 1;
        continue;
      }
      if (state === "closed") {
        const c = chunk[i] as string;
        i++;
        if (pendingCR && c !== "\n") {
          throw new DataError({
            file,
            line: recordLine,
            reason: `a quoted field closed on line ${line} is followed by a lone "\\r"`,
          });
        }
        if (c === '"' && !pendingCR) {
          field += '"'; // "" is an escaped quote
          state = "quoted";
        } else if (c === delim) {
          fields.push(field);
          field = "";
          state = "start";
        } else if (c === "\n") {
          pendingCR = false;
          endRecord();
          line++;
          recordLine = line;
        } else if (c === "\r") {
          pendingCR = true;
        } else {
          throw new DataError({
            file,
            line: recordLine,
            reason:
              `unclosed quote: the quoted field opened on line ${quoteLine} is closed on line ${line} ` +
              `but followed by ${JSON.stringify(c)} instead of a delimiter or line end`,
          });
        }
        continue;
      }
      if (state === "start" && chunk[i] === '"') {
        state = "quoted";
        quoteLine = line;
        i++;
        continue;
      }
      // An unquoted field runs to the next delimiter or line end (a stray quote in it is text).
      state = "plain";
      if (nextDelim !== -1 && nextDelim < i) nextDelim = chunk.indexOf(delim, i);
      if (nextNL !== -1 && nextNL < i) nextNL = chunk.indexOf("\n", i);
      const stop = nextDelim === -1 ? nextNL : nextNL === -1 ? nextDelim : Math.min(nextDelim, nextNL);
      if (stop === -1) {
        field += chunk.slice(i); // the field continues in the next chunk
        break;
      }
      field += chunk.slice(i, stop);
      i = stop + 1;
      if (stop === nextDelim) {
        fields.push(field);
        field = "";
        state = "start";
      } else {
        if (field.endsWith("\r")) field = field.slice(0, -1);
        endRecord();
        line++;
        recordLine = line;
      }
    }
  };

  for await (const chunk of chunks) {
    let error: unknown;
    try {
      feed(chunk);
    } catch (err) {
      error = err;
    }
    // Deliver the good records before the bad one, then the error.
    if (out.length > 0) {
      yield out;
      out = [];
    }
    if (error !== undefined) throw error;
  }
  if (state === "quoted") {
    throw new DataError({
      file,
      line: recordLine,
      reason: `unclosed quote: the quoted field opened on line ${quoteLine} never ends`,
    });
  }
  if (state !== "start" || fields.length > 0) {
    if (state === "plain" && field.endsWith("\r")) field = field.slice(0, -1);
    endRecord();
  }
  if (out.length > 0) yield out;
}

/** The id of a record, or undefined when absent and not required. */
function readId(
  value: unknown,
  idField: string,
  required: boolean,
  file: string,
  line: number,
): string | number | undefined {
  if (value === undefined || value === null) {
    if (required) throw new DataError({ file, line, field: idField, reason: "missing id" });
    return undefined;
  }
  if (typeof value === "string" || typeof value === "number") return value;
  throw new DataError({
    file,
    line,
    field: idField,
    reason: `id must be a string or a number, got ${typeof value}`,
  });
}

/** Wrap an async iterable so its first chunk can be inspected before it is consumed. */
async function peek(chunks: AsyncGenerator<string>): Promise<{ first: string; all: AsyncGenerator<string> }> {
  // Read until a non-blank character appears (or the input ends).
  const head: string[] = [];
  let seen = "";
  while (seen.trim() === "") {
    const r = await chunks.next();
    if (r.done) break;
    head.push(r.value);
    seen += r.value;
  }
  async function* all(): AsyncGenerator<string> {
    yield* head;
    yield* chunks;
  }
  return { first: seen.trimStart()[0] ?? "", all: all() };
}

/**
 * Read inputs lazily from a file or `-` (stdin).
 *
 * Errors are {@link DataError}s naming the file, the line and the field: invalid JSON, a record that is
 * not an object, a missing or non-string text, an unclosed quote, a CSV row with the wrong number of
 * fields, a missing text column.
 * @example
 * for await (const rec of readInputs("posts.csv", { textField: "body" })) {
 *   console.log(rec.index, rec.id, rec.text);
 * }
 */
export async function* readInputs(path: string, options: ReadInputOptions = {}): AsyncGenerator<InputRecord> {
  const isStdin = path === "-";
  const file = isStdin ? STDIN_NAME : path;
  const textField = options.textField ?? "text";
  const idField = options.idField ?? "id";
  const idRequired = options.idField !== undefined;
  const source: Readable = isStdin
    ? (options.stdin ?? process.stdin)
    : createReadStream(path, { highWaterMark: 1 << 20 });
  let chunks = textChunks(source, file, { strict: options.strictUtf8, onInvalid: options.onInvalidUtf8 });
  const maxTextBytes = options.maxTextBytes ?? Number.POSITIVE_INFINITY;
  // Cheap first: a text has at most 3 bytes per UTF-16 unit, so most need no byte count.
  const checkSize = (text: string, line: number, field?: string): void => {
    if (text.length * 3 <= maxTextBytes) return;
    const bytes = Buffer.byteLength(text, "utf8");
    if (bytes <= maxTextBytes) return;
    throw new DataError({
      file,
      line,
      field,
      reason: `the text is ${bytes} bytes, more than --max-text-bytes ${maxTextBytes}; split it, or raise the limit`,
    });
  };
  let format = options.format ?? (isStdin ? undefined : formatFromExtension(path));
  if (format === undefined) {
    const peeked = await peek(chunks);
    chunks = peeked.all;
    format = peeked.first === "{" ? "jsonl" : "txt";
  }

  let index = 0;
  try {
    // The longest line that can hold an acceptable text (JSON escapes take up to 6 characters a byte).
    const lineTooLong = (line: number) =>
      new DataError({
        file,
        line,
        reason: `the line is longer than any text --max-text-bytes ${maxTextBytes} allows; split it, or raise the limit`,
      });
    if (format === "txt") {
      for await (const batch of lines(chunks, maxTextBytes, lineTooLong)) {
        for (const { text, line } of batch) {
          if (text.trim() === "") continue;
          checkSize(text, line);
          yield { index: index++, text, fields: { text }, line };
        }
      }
      return;
    }

    if (format === "jsonl") {
      for await (const batch of lines(chunks, 6 * maxTextBytes + 65_536, lineTooLong)) {
        for (const { text: lineText, line } of batch) {
          if (lineText.trim() === "") continue;
          let value: unknown;
          try {
            value = JSON.parse(lineText);
          } catch (err) {
            const msg = err instanceof Error ? err.message : String(err);
            throw new DataError({ file, line, reason: `invalid JSON (${msg.slice(0, 120)})` });
          }
          if (typeof value !== "object" || value === null || Array.isArray(value)) {
            throw new DataError({ file, line, reason: "expected a JSON object on this line" });
          }
          const fields = value as Record<string, unknown>;
          const text = fields[textField];
          if (typeof text !== "string") {
            const reason =
              text === undefined ? "missing text" : `text must be a string, got ${JSON.stringify(text)}`;
            throw new DataError({ file, line, field: textField, reason });
          }
          checkSize(text, line, textField);
          const id = readId(fields[idField], idField, idRequired, file, line);
          yield { index: index++, ...(id === undefined ? {} : { id }), text, fields, line };
        }
      }
      return;
    }

    // CSV / TSV: the first record is the header.
    let columns: string[] | undefined;
    let textCol = -1;
    let idCol = -1;
    for await (const batch of csvRecords(chunks, file, format === "tsv" ? "\t" : ",")) {
      for (const rec of batch) {
        if (columns === undefined) {
          columns = rec.fields.map((c) => c.trim());
          const seen = new Set<string>();
          for (const [i, c] of columns.entries()) {
            if (c === "")
              throw new DataError({ file, line: rec.line, reason: `header column ${i + 1} has no name` });
            if (seen.has(c))
              throw new DataError({
                file,
                line: rec.line,
                field: c,
                reason: "duplicate column name in the header",
              });
            seen.add(c);
          }
          textCol = columns.indexOf(textField);
          if (textCol === -1) {
            throw new DataError({
              file,
              line: rec.line,
              field: textField,
              reason: `no such column (columns: ${columns.join(", ")})`,
            });
          }
          idCol = columns.indexOf(idField);
          if (idCol === -1 && idRequired) {
            throw new DataError({
              file,
              line: rec.line,
              field: idField,
              reason: `no such column (columns: ${columns.join(", ")})`,
            });
          }
          continue;
        }
        if (rec.fields.length !== columns.length) {
          throw new DataError({
            file,
            line: rec.line,
            reason: `expected ${columns.length} fields (as in the header), found ${rec.fields.length}`,
          });
        }
        const fields: Record<string, unknown> = {};
        columns.forEach((c, i) => {
          fields[c] = rec.fields[i];
        });
        const text = rec.fields[textCol] as string;
        checkSize(text, rec.line, textField);
        const id = idCol === -1 ? undefined : (rec.fields[idCol] as string);
        yield { index: index++, ...(id === undefined ? {} : { id }), text, fields, line: rec.line };
      }
    }
  } finally {
    // Stop reading the file when the consumer breaks out early (stdin is left to its owner).
    if (!isStdin) source.destroy();
  }
}

/** Options of {@link openResumableJsonlWriter}. */
export interface ResumableWriterOptions {
  /** Continue a previous run's output instead of starting afresh. */
  resume?: boolean;
  /**
   * What the output is made from (input file and size, model, options that change the rows): kept
   * in `<out>.state.json` with the row count and a digest of the inputs consumed (see
   * {@link ResumableJsonlWriter.append}). A resume whose identity differs is refused, naming the
   * first difference; so is a resume of an output that has no state.
   */
  identity?: Record<string, unknown>;
  /** Field of each row holding the input index (default `index`); used to check the resumed file. */
  indexField?: string;
  /** fsync after every batch (default false: rows reach the OS per batch, which survives a killed process). */
  syncEachBatch?: boolean;
}

/** An open resumable JSONL output. */
export interface ResumableJsonlWriter {
  /** The final output path. */
  readonly path: string;
  /** Where rows are written until {@link ResumableJsonlWriter.close} renames it to `path`. */
  readonly partialPath: string;
  /** Complete rows kept from a previous run (0 when not resuming): skip inputs with `index < resumedRows`. */
  readonly resumedRows: number;
  /** `indexField` of the last kept row, when there is one. */
  readonly lastIndex: number | undefined;
  /**
   * With an `identity`: the digest saved with the kept rows (see {@link RowDigest}); the caller
   * recomputes it over its first `resumedRows` inputs and refuses to go on when it differs.
   */
  readonly resumedDigest: string | undefined;
  /** `<out>.state.json` when the writer has an `identity`. */
  readonly statePath: string | undefined;
  /** Rows in the output so far, kept and appended. */
  readonly rowCount: number;
  /**
   * Append rows as JSON lines in one write (call once per batch); resolves when they reach the OS.
   * With an `identity`, pass the digest of every input consumed so far: it is saved (after the rows)
   * in the state file, and only rows the state file counts are kept by a resume.
   */
  append(rows: readonly unknown[], digest?: string): Promise<void>;
  /** Flush, close and rename the partial file to `path` (atomic): the output is complete. */
  close(): Promise<void>;
  /**
   * Close without renaming, leaving `partialPath` for a later `resume` (e.g. on Ctrl-C). Rows
   * appended so far are kept.
   */
  suspend(): Promise<void>;
}

/**
 * A writer of JSON lines to a stream (`--out -`: stdout), with the interface of the resumable file
 * writer. Nothing to resume or rename: rows are written as they come, and a broken pipe (e.g. `| head`)
 * ends the output quietly.
 */
export function streamJsonlWriter(stream: NodeJS.WritableStream = process.stdout): ResumableJsonlWriter {
  let rows = 0;
  let closed = false;
  // Other errors reach the write callback below.
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") closed = true;
  });
  const write = (text: string) =>
    new Promise<void>((done, fail) => {
      if (closed) return done();
      stream.write(text, (err) =>
        err && (err as NodeJS.ErrnoException).code !== "EPIPE" ? fail(err) : done(),
      );
    });
  return {
    path: "-",
    partialPath: "-",
    resumedRows: 0,
    lastIndex: undefined,
    resumedDigest: undefined,
    statePath: undefined,
    get rowCount() {
      return rows;
    },
    async append(batch) {
      if (batch.length === 0) return;
      rows += batch.length;
      await write(batch.map((r) => `${JSON.stringify(r)}\n`).join(""));
    },
    async close() {},
    async suspend() {},
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/**
 * Scan a JSONL file: number of complete (newline-terminated) lines (at most `limit`), the byte length
 * they span, and the text of the last one. Reads in chunks: constant memory whatever the size.
 */
async function scanCompleteLines(
  path: string,
  limit = Number.POSITIVE_INFINITY,
): Promise<{ count: number; length: number; last?: string }> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(1 << 20);
    let pos = 0;
    let count = 0;
    let lastEnd = -1; // offset of the last "\n"
    let prevEnd = -1; // offset of the "\n" before it
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      for (let k = buf.indexOf(10); k !== -1 && k < bytesRead && count < limit; k = buf.indexOf(10, k + 1)) {
        count++;
        prevEnd = lastEnd;
        lastEnd = pos + k;
      }
      if (count >= limit) break;
      pos += bytesRead;
    }
    if (count === 0) return { count: 0, length: 0 };
    const lastBuf = Buffer.alloc(lastEnd - prevEnd - 1);
    await fh.read(lastBuf, 0, lastBuf.length, prevEnd + 1);
    return { count, length: lastEnd + 1, last: lastBuf.toString("utf8") };
  } finally {
    await fh.close();
  }
}

/**
 * Open a JSONL output that survives interruptions.
 *
 * Rows go to `<outFile>.partial`; {@link ResumableJsonlWriter.close} renames it to `outFile`.
 * - Without `resume`, any previous partial output is discarded and writing starts from scratch
 *   (an existing `outFile` is replaced only at close).
 * - With `resume`, the partial file is reopened: its complete lines are counted (`resumedRows`), the
 *   last one's index is read (`lastIndex`), a torn last line is cut off, and new rows are appended.
 *   When only a finished `outFile` exists it is reopened the same way (all inputs then count as done).
 *   A resumed file whose last row's index is not `resumedRows − 1` is refused: it was not written one
 *   row per input, in order, so counting rows would skip the wrong inputs.
 * @example
 * const out = await openResumableJsonlWriter("scores.jsonl", { resume: true });
 * for await (const batch of batchesOf(readInputs("posts.jsonl"), 64)) {
 *   const todo = batch.filter((r) => r.index >= out.resumedRows);
 *   if (todo.length > 0) await out.append(await score(todo));
 * }
 * await out.close();
 */
export async function openResumableJsonlWriter(
  outFile: string,
  options: ResumableWriterOptions = {},
): Promise<ResumableJsonlWriter> {
  const partialPath = `${outFile}.partial`;
  const indexField = options.indexField ?? "index";
  const identity = options.identity;
  const statePath = identity ? `${outFile}.state.json` : undefined;
  await mkdir(dirname(outFile), { recursive: true });

  let resumedRows = 0;
  let lastIndex: number | undefined;
  let resumedDigest: string | undefined;
  if (options.resume) {
    if (!(await exists(partialPath)) && (await exists(outFile))) await rename(outFile, partialPath);
    if (await exists(partialPath)) {
      // With a state file, only the rows it counts are kept (rows appended after its last update,
      // by a run killed in between, are scored again).
      const state = statePath ? await readWriterState(statePath, partialPath, identity ?? {}) : undefined;
      resumedDigest = state?.digest;
      const scan = await scanCompleteLines(partialPath, state?.rows);
      if (statePath && !state && scan.count > 0) {
        throw new DataError({
          file: partialPath,
          reason: `cannot resume: no ${statePath} records what its ${scan.count} rows were made from; run without --resume to start over`,
        });
      }
      if (state && scan.count < state.rows) {
        throw new DataError({
          file: partialPath,
          reason: `cannot resume: ${scan.count} complete rows but ${statePath} counts ${state.rows}; run without --resume to start over`,
        });
      }
      if (scan.last !== undefined) {
        let row: unknown;
        try {
          row = JSON.parse(scan.last);
        } catch {
          throw new DataError({
            file: partialPath,
            line: scan.count,
            reason: "cannot resume: the last complete line is not valid JSON",
          });
        }
        const value = (row as Record<string, unknown> | null)?.[indexField];
        if (typeof value === "number") lastIndex = value;
        if (lastIndex !== undefined && lastIndex !== scan.count - 1) {
          throw new DataError({
            file: partialPath,
            line: scan.count,
            field: indexField,
            reason: `cannot resume: ${scan.count} complete rows but the last has index ${lastIndex}; expected ${scan.count - 1}`,
          });
        }
      }
      resumedRows = scan.count;
      await truncate(partialPath, scan.length); // drop a torn last line
    }
  }

  const fh: FileHandle = await open(partialPath, options.resume ? "a" : "w");
  let rowCount = resumedRows;
  const saveState = (rows: number, digest: string | undefined, complete: boolean) =>
    statePath
      ? writeJsonAtomic(statePath, { version: 1, identity, rows, digest: digest ?? null, complete })
      : Promise.resolve();
  await saveState(resumedRows, resumedDigest, false);
  let lastDigest = resumedDigest;
  let queue: Promise<void> = Promise.resolve(); // serialises appends
  let closed = false;

  const append = (rows: readonly unknown[], digest?: string): Promise<void> => {
    if (closed) return Promise.reject(new Error(`${partialPath}: writer is closed`));
    const text = rows
      .map((r, i) => {
        const json = JSON.stringify(r);
        if (json === undefined) throw new Error(`row ${i} of the batch cannot be written as JSON`);
        return `${json}\n`;
      })
      .join("");
    const next = queue.then(async () => {
      if (text.length > 0) await fh.write(text); // one write per batch: at most one torn line on a crash
      if (options.syncEachBatch) await fh.datasync();
      rowCount += rows.length;
      if (statePath) {
        if (digest === undefined) throw new Error(`${partialPath}: append needs the inputs' digest`);
        lastDigest = digest;
        await saveState(rowCount, digest, false);
      }
    });
    queue = next.catch(() => {});
    return next;
  };

  const finish = async (rename_: boolean): Promise<void> => {
    if (closed) return;
    closed = true;
    await queue;
    await fh.datasync();
    await fh.close();
    if (rename_) {
      await rename(partialPath, outFile);
      await saveState(rowCount, lastDigest, true);
    }
  };

  return {
    path: outFile,
    partialPath,
    resumedRows,
    lastIndex,
    resumedDigest,
    statePath,
    get rowCount() {
      return rowCount;
    },
    append,
    close: () => finish(true),
    suspend: () => finish(false),
  };
}

/** What `<out>.state.json` holds (see {@link ResumableWriterOptions.identity}). */
interface WriterState {
  version: 1;
  identity: Record<string, unknown>;
  rows: number;
  digest: string | null;
  complete: boolean;
}

/** The state of a resumed output, checked against `identity`; a mismatch is one clear line. */
async function readWriterState(
  statePath: string,
  partialPath: string,
  identity: Record<string, unknown>,
): Promise<{ rows: number; digest: string | undefined } | undefined> {
  if (!(await exists(statePath))) return undefined;
  let state: WriterState;
  try {
    state = JSON.parse(await readFile(statePath, "utf8")) as WriterState;
    if (state?.version !== 1 || !Number.isInteger(state.rows) || typeof state.identity !== "object")
      throw new Error("unexpected content");
  } catch (err) {
    throw new DataError({
      file: statePath,
      reason: `cannot resume: unreadable state (${(err as Error).message}); run without --resume to start over`,
    });
  }
  for (const key of new Set([...Object.keys(state.identity ?? {}), ...Object.keys(identity)])) {
    const was = JSON.stringify(state.identity[key]);
    const now = JSON.stringify(identity[key]);
    if (was !== now) {
      throw new DataError({
        file: partialPath,
        reason: `cannot resume: it was made with ${key} ${was ?? "(none)"}, not ${now ?? "(none)"}; run without --resume to start over, or use another --out`,
      });
    }
  }
  return { rows: state.rows, digest: state.digest ?? undefined };
}

/**
 * Whether `outFile` has a partial output whose state matches `identity`: what a resume with that
 * identity would continue (`toxlora predict --queue` resumes such an output unasked).
 */
export async function resumableOutput(outFile: string, identity: Record<string, unknown>): Promise<boolean> {
  const partialPath = `${outFile}.partial`;
  if (!(await exists(partialPath))) return false;
  return readWriterState(`${outFile}.state.json`, partialPath, identity).then(
    (state) => state !== undefined,
    () => false,
  );
}

/**
 * A running SHA-256 of the inputs consumed, in order (id and text of each): what a resumed output
 * checks so that its kept rows belong to the same inputs, not just to the same number of them.
 */
export class RowDigest {
  private readonly hash: Hash = createHash("sha256");

  add(id: string | number | undefined, text: string): void {
    this.hash.update(`${JSON.stringify([id ?? null, text])}\n`);
  }

  /** The digest of everything added so far (adding more afterwards is fine). */
  value(): string {
    return this.hash.copy().digest("hex");
  }
}
