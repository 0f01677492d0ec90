// Readers: turn a data file into plain row objects with their line numbers. Formats:
// - JSON lines (.jsonl, .ndjson): one object per line.
// - Hugging Face `datasets` JSON (.json): `Dataset.to_json()` writes JSON lines into a .json file;
//   a JSON array of objects and `{"data": [...]}` (load_dataset's `field="data"`) are read too.
// - CSV / TSV (.csv, .tsv): RFC 4180 — quoted fields may hold delimiters, newlines and "" escapes;
//   lines end in \r\n, \n or a lone \r.
// Files may start with a UTF-8 BOM. Problems are collected per row (not thrown), so the loader can
// either stop at the first one or, in lenient mode, skip bad rows and report them.
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { invalidUtf8Lines } from "../io/utf8.js";
import { DataError } from "./errors.js";

export type DataFormat = "jsonl" | "json" | "csv" | "tsv";

/** One parsed row: its fields, and the 1-based line where it starts in the file. */
export interface RawRow {
  line: number;
  value: Record<string, unknown>;
}

export interface ReadResult {
  format: DataFormat;
  rows: RawRow[];
  /** Rows that could not be parsed (each names file and line). */
  errors: DataError[];
  /** Column names, for CSV/TSV. */
  columns?: string[];
  /** Lines holding bytes that are not UTF-8 (read as U+FFFD). */
  invalidUtf8Lines?: number[];
}

/** Picks the format from the extension, else from the first character of the content. */
export function detectDataFormat(file: string, text: string): DataFormat {
  const ext = extname(file).toLowerCase();
  if (ext === ".jsonl" || ext === ".ndjson") return "jsonl";
  if (ext === ".json") return "json";
  if (ext === ".csv") return "csv";
  if (ext === ".tsv" || ext === ".tab") return "tsv";
  const first = text.trimStart()[0];
  if (first === "[") return "json";
  if (first === "{") return "jsonl";
  return text.split("\n", 1)[0]?.includes("\t") ? "tsv" : "csv";
}

export async function readRows(file: string, options: { format?: DataFormat } = {}): Promise<ReadResult> {
  const bytes = await readFile(file);
  let text = bytes.toString("utf8");
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const read = parseRows(text, file, options.format ?? detectDataFormat(file, text));
  const bad = invalidUtf8Lines(bytes);
  return bad.length > 0 ? { ...read, invalidUtf8Lines: bad } : read;
}

export function parseRows(text: string, file: string, format: DataFormat): ReadResult {
  switch (format) {
    case "jsonl":
      return parseJsonLines(text, file);
    case "json":
      return parseJsonDocument(text, file);
    case "csv":
      return parseDelimited(text, file, ",");
    case "tsv":
      return parseDelimited(text, file, "\t");
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** V8's JSON.parse messages vary; keep them short and drop the echoed input. */
function jsonReason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return `invalid JSON (${msg.replace(/, ".*" is not valid JSON$/s, "").slice(0, 120)})`;
}

export function parseJsonLines(text: string, file: string): ReadResult {
  const rows: RawRow[] = [];
  const errors: DataError[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const lineText = (lines[i] as string).replace(/\r$/, "");
    if (lineText.trim() === "") continue;
    const line = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(lineText);
    } catch (err) {
      errors.push(new DataError({ file, line, reason: jsonReason(err) }));
      continue;
    }
    if (!isPlainObject(value)) {
      errors.push(new DataError({ file, line, reason: "expected a JSON object on this line" }));
      continue;
    }
    rows.push({ line, value });
  }
  return { format: "jsonl", rows, errors };
}

/** 1-based line number of a character offset. */
function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) line++;
  return line;
}

/**
 * A .json file as the `datasets` library reads it: a JSON array of objects, an object whose
 * `data` field is that array, or (what `Dataset.to_json` writes) JSON lines.
 */
export function parseJsonDocument(text: string, file: string): ReadResult {
  const trimmed = text.trimStart();
  if (trimmed === "") return { format: "json", rows: [], errors: [] };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    // Not one JSON value: JSON lines, unless it clearly meant to be an array.
    if (trimmed[0] !== "[") return { ...parseJsonLines(text, file), format: "json" };
    const pos = /position (\d+)/.exec(String(err))?.[1];
    const line = pos === undefined ? undefined : lineAt(text, Number(pos));
    return { format: "json", rows: [], errors: [new DataError({ file, line, reason: jsonReason(err) })] };
  }
  let items: unknown[];
  let arrayStart: number;
  if (Array.isArray(doc)) {
    items = doc;
    arrayStart = text.indexOf("[");
  } else if (isPlainObject(doc) && Array.isArray(doc.data)) {
    items = doc.data;
    arrayStart = topLevelValueStart(text, "data");
  } else if (isPlainObject(doc)) {
    return { ...parseJsonLines(text, file), format: "json" }; // a one-line JSON lines file
  } else {
    return {
      format: "json",
      rows: [],
      errors: [
        new DataError({ file, line: 1, reason: "expected JSON lines, an array of objects or {data: [...]}" }),
      ],
    };
  }
  const starts = arrayElementStarts(text, arrayStart);
  const rows: RawRow[] = [];
  const errors: DataError[] = [];
  items.forEach((item, i) => {
    const line = lineAt(text, starts[i] ?? arrayStart);
    if (isPlainObject(item)) rows.push({ line, value: item });
    else errors.push(new DataError({ file, line, reason: `array element ${i} is not an object` }));
  });
  return { format: "json", rows, errors };
}

/** Skips one JSON string starting at `i` (a quote); returns the index after its closing quote. */
function skipString(text: string, i: number): number {
  let j = i + 1;
  while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
  return j + 1;
}

/** Offset of the value of `key` in the top-level object of a valid JSON document. */
function topLevelValueStart(text: string, key: string): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = skipString(text, i);
      if (depth === 1) {
        const after = text.slice(end).match(/^\s*:\s*/);
        if (after && JSON.parse(text.slice(i, end)) === key) return end + after[0].length;
      }
      i = end - 1;
    } else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
  }
  return 0;
}

/** Offsets where each element of the (valid) JSON array starting at `start` begins. */
function arrayElementStarts(text: string, start: number): number[] {
  const starts: number[] = [];
  let depth = 0;
  let expectValue = true;
  for (let i = start; i < text.length; i++) {
    const c = text[i] as string;
    if (depth === 1 && expectValue && !/[\s,\]]/.test(c)) {
      starts.push(i);
      expectValue = false;
    }
    if (c === '"') i = skipString(text, i) - 1;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      depth--;
      if (depth === 0) break;
    } else if (c === "," && depth === 1) expectValue = true;
  }
  return starts;
}

type CsvRecord = { fields: string[]; line: number; next: number; nextLine: number };
type CsvFailure = { line: number; fieldIndex: number; reason: string };

/**
 * Length of the line break at `i`: 2 for \r\n, 1 for \n or a lone \r (old Mac files; pandas and
 * Python's csv module read it as a line end too), 0 when there is none.
 */
function lineBreakAt(text: string, i: number): number {
  if (text[i] === "\n") return 1;
  if (text[i] === "\r") return text[i + 1] === "\n" ? 2 : 1;
  return 0;
}

/** Parses one RFC 4180 record starting at `pos` (which is at the start of line `line`). */
function parseCsvRecord(text: string, pos: number, line: number, delim: string): CsvRecord | CsvFailure {
  const fields: string[] = [];
  const startLine = line;
  for (;;) {
    if (text[pos] === '"') {
      const quoteLine = line;
      let value = "";
      pos++;
      for (;;) {
        const close = text.indexOf('"', pos);
        if (close === -1) {
          return {
            line: startLine,
            fieldIndex: fields.length,
            reason: `unclosed quote: the quoted field opened on line ${quoteLine} never ends`,
          };
        }
        const chunk = text.slice(pos, close);
        for (let k = chunk.indexOf("\n"); k !== -1; k = chunk.indexOf("\n", k + 1)) line++;
        value += chunk;
        if (text[close + 1] === '"') {
          value += '"'; // "" is an escaped quote
          pos = close + 2;
        } else {
          pos = close + 1;
          break;
        }
      }
      fields.push(value);
      const c = text[pos];
      if (c === delim) {
        pos++;
        continue;
      }
      if (pos >= text.length) return { fields, line: startLine, next: pos, nextLine: line };
      const br = lineBreakAt(text, pos);
      if (br > 0) return { fields, line: startLine, next: pos + br, nextLine: line + 1 };
      return {
        line: startLine,
        fieldIndex: fields.length - 1,
        reason:
          `unclosed quote: the quoted field opened on line ${quoteLine} is closed on line ${line} ` +
          `but followed by ${JSON.stringify(c)} instead of a delimiter or line end`,
      };
    }
    // Unquoted field: up to the next delimiter or line end. A stray quote inside is kept as text.
    let end = pos;
    while (end < text.length && text[end] !== delim && lineBreakAt(text, end) === 0) end++;
    fields.push(text.slice(pos, end));
    if (text[end] === delim) {
      pos = end + 1;
      continue;
    }
    if (end >= text.length) return { fields, line: startLine, next: end, nextLine: line };
    return { fields, line: startLine, next: end + lineBreakAt(text, end), nextLine: line + 1 };
  }
}

/** One record of a delimited file, or the quoting error that made it unreadable. */
export type DelimitedRecord =
  | { line: number; fields: string[] }
  | { line: number /** 0-based index of the bad field */; fieldIndex: number; reason: string };

/**
 * Splits CSV/TSV text into records, each with the 1-based line it starts on; blank lines are
 * skipped. A record with a quoting error becomes a failure entry and reading resumes on the next
 * physical line, so one bad quote costs one row in lenient mode. Shared by the dataset loader and
 * `tweets import`.
 */
export function splitDelimited(text: string, delim: string): DelimitedRecord[] {
  const records: DelimitedRecord[] = [];
  let pos = 0;
  let line = 1;
  while (pos < text.length) {
    const r = parseCsvRecord(text, pos, line, delim);
    if ("reason" in r) {
      records.push(r);
      const nl = /\r\n?|\n/g;
      nl.lastIndex = pos;
      const m = nl.exec(text);
      pos = m === null ? text.length : m.index + m[0].length;
      line = r.line + 1;
      continue;
    }
    pos = r.next;
    line = r.nextLine;
    if (r.fields.length === 1 && r.fields[0] === "") continue; // blank line
    records.push({ fields: r.fields, line: r.line });
  }
  return records;
}

export function parseDelimited(text: string, file: string, delim: string): ReadResult {
  const format: DataFormat = delim === "\t" ? "tsv" : "csv";
  const records = splitDelimited(text, delim);
  const header = records[0];
  if (header === undefined) return { format, rows: [], errors: [] };
  if ("reason" in header) {
    return { format, rows: [], errors: [new DataError({ file, line: header.line, reason: header.reason })] };
  }
  const columns = header.fields.map((c) => c.trim());
  const fatal = (reason: string, field?: string): ReadResult => ({
    format,
    rows: [],
    errors: [new DataError({ file, line: header.line, field, reason })],
  });
  const seen = new Set<string>();
  for (const [i, c] of columns.entries()) {
    if (c === "") return fatal(`header column ${i + 1} has no name`);
    if (seen.has(c)) return fatal("duplicate column name in the header", c);
    seen.add(c);
  }

  // Errors in file order; a quoting error names its column now that the header is known.
  const rowErrors: DataError[] = [];
  const rows: RawRow[] = [];
  for (const rec of records.slice(1)) {
    if ("reason" in rec) {
      rowErrors.push(
        new DataError({ file, line: rec.line, field: columns[rec.fieldIndex], reason: rec.reason }),
      );
      continue;
    }
    if (rec.fields.length !== columns.length) {
      rowErrors.push(
        new DataError({
          file,
          line: rec.line,
          reason: `expected ${columns.length} fields (as in the header), found ${rec.fields.length}`,
        }),
      );
      continue;
    }
    rows.push({ line: rec.line, value: Object.fromEntries(columns.map((c, i) => [c, rec.fields[i]])) });
  }
  return { format, rows, errors: rowErrors, columns };
}
