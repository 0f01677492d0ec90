// loadDataset: read a file, decode every row with a label schema, and validate it. Strict by
// default (the first bad row is an error naming file, line and field); `lenient` skips bad rows
// and reports them instead.
import { invalidUtf8Warning } from "../io/utf8.js";
import { DataError } from "./errors.js";
import { type DataFormat, type RawRow, readRows } from "./readers.js";
import { isMultiHot, type LabelSchema, normaliseValue, PRESET_NAMES } from "./schema.js";

/** One labelled text. `labels[j]` is 0/1 for the dataset's j-th label. */
export interface DataRecord {
  id: string;
  text: string;
  labels: number[];
  /** Overall label (toxic | nontoxic | has_toxic_expression for LLM-jp), when the schema has one. */
  overall?: string;
  /** The row as read, with every original field. */
  raw: Record<string, unknown>;
  /** 1-based line in the source file where the row starts. */
  line: number;
}

export interface Dataset {
  file: string;
  format: DataFormat;
  schema: LabelSchema;
  /** Label names, in the order of `DataRecord.labels`. */
  labels: string[];
  records: DataRecord[];
  /** Rows skipped in lenient mode (empty otherwise). */
  skipped: DataError[];
  /** Problems that do not invalidate a row, e.g. duplicate ids. */
  warnings: string[];
}

export interface LoadOptions {
  /** Skip bad rows (and list them in `skipped`) instead of failing on the first one. */
  lenient?: boolean;
  /** Override the format detected from the extension. */
  format?: DataFormat;
  /**
   * Label fields missing from every row are dropped (with a warning) instead of failing each row.
   * Default true; set false to require every label of the schema.
   */
  dropAbsentLabels?: boolean;
}

export async function loadDataset(
  file: string,
  schema: LabelSchema,
  options: LoadOptions = {},
): Promise<Dataset> {
  const read = await readRows(file, { format: options.format });
  const warnings: string[] = [];
  const utf8 = invalidUtf8Warning(file, read.invalidUtf8Lines ?? []);
  if (utf8) warnings.push(utf8);
  // A file written by `balance --strategy keep-labels:...` lacks the dropped label columns
  // altogether; read it with the remaining labels rather than failing on every row.
  if (schema.values.kind !== "list" && read.rows.length > 0 && options.dropAbsentLabels !== false) {
    const present = schema.labels.filter((l) => read.rows.some((r) => l.field in r.value));
    if (present.length === 0) throw noLabelField(file, schema, read.rows);
    if (present.length < schema.labels.length) {
      const absent = schema.labels.filter((l) => !present.includes(l)).map((l) => l.name);
      warnings.push(
        `${file}: label field(s) ${absent.join(", ")} appear in no row; using ${present.map((l) => l.name).join(", ")}`,
      );
      schema = { ...schema, labels: present };
    }
  }
  const decoded = decodeRows(read.rows, schema, file);
  // Report problems in file order, whichever stage found them.
  const problems = [...read.errors, ...decoded.errors].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  if (problems.length > 0 && !options.lenient) throw problems[0];
  if (read.rows.length === 0 && read.errors.length === 0) {
    throw new DataError({ file, reason: "empty file (no records)" });
  }
  if (decoded.records.length === 0) {
    throw new DataError({ file, reason: `no valid records (${problems.length} bad rows skipped)` });
  }
  return {
    file,
    format: read.format,
    schema,
    labels: schema.labels.map((l) => l.name),
    records: decoded.records,
    skipped: problems,
    warnings: [...warnings, ...duplicateIdWarnings(decoded.records, file)],
  };
}

/** Decodes parsed rows with a schema; rows that do not fit become errors. */
export function decodeRows(
  rows: RawRow[],
  schema: LabelSchema,
  file: string,
): { records: DataRecord[]; errors: DataError[] } {
  const records: DataRecord[] = [];
  const errors: DataError[] = [];
  for (const row of rows) {
    const r = decodeRow(row, schema, file);
    if (r instanceof DataError) errors.push(r);
    else records.push(r);
  }
  return { records, errors };
}

/** The schema names label fields the file never has: most likely the wrong (or a forgotten) --preset. */
function noLabelField(file: string, schema: LabelSchema, rows: readonly RawRow[]): DataError {
  const fields = [...new Set(rows.slice(0, 100).flatMap((r) => Object.keys(r.value)))];
  return new DataError({
    file,
    reason:
      `no row has any label field of the ${schema.name} schema (${schema.labels.map((l) => l.field).join(", ")}); ` +
      `the file's fields are ${fields.join(", ")}. Choose the schema with --preset (${PRESET_NAMES.join(", ")}) ` +
      "or name the label fields with --labels a,b,c",
  });
}

function isMissing(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === "string" && v.trim() === "");
}

/** A vote count: a non-negative integer, as a number or as CSV text. */
function parseCount(v: unknown): number | undefined {
  const n =
    typeof v === "number" ? v : typeof v === "string" && /^\s*\d+\s*$/.test(v) ? Number(v) : Number.NaN;
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

export function decodeRow(row: RawRow, schema: LabelSchema, file: string): DataRecord | DataError {
  const { line, value } = row;
  const fail = (field: string | undefined, reason: string) => new DataError({ file, line, field, reason });

  const text = value[schema.textField];
  if (text === undefined || text === null) return fail(schema.textField, "missing text");
  if (typeof text !== "string") return fail(schema.textField, `text must be a string, got ${typeof text}`);
  if (text.trim() === "") return fail(schema.textField, "empty text");

  const rawId = value[schema.idField];
  const id = isMissing(rawId) ? String(line) : String(rawId);

  const labels: number[] = [];
  const rule = schema.values;
  if (rule.kind === "list") {
    const list = value[rule.field];
    if (!Array.isArray(list))
      return fail(rule.field, "expected a list of label names or a multi-hot 0/1 list");
    const names = schema.labels.map((l) => l.name);
    if (isMultiHot(list, names.length)) labels.push(...list);
    else {
      for (const x of list) {
        if (typeof x !== "string" || !names.includes(x)) {
          return fail(rule.field, `unknown label ${JSON.stringify(x)} (labels: ${names.join(", ")})`);
        }
      }
      for (const n of names) labels.push(list.includes(n) ? 1 : 0);
    }
  } else {
    let minVotes = 0;
    if (rule.kind === "votes") {
      if (rule.minVotes !== undefined) minVotes = rule.minVotes;
      else {
        const annotators = parseCount(value[rule.annotatorsField]);
        if (annotators === undefined || annotators === 0) {
          return fail(
            rule.annotatorsField,
            `expected a positive annotator count, got ${JSON.stringify(value[rule.annotatorsField])}`,
          );
        }
        minVotes = Math.floor(annotators / 2) + 1; // "more than half"
      }
    }
    for (const { field } of schema.labels) {
      const v = value[field];
      if (isMissing(v)) return fail(field, "missing label value");
      if (rule.kind === "votes") {
        const votes = parseCount(v);
        if (votes === undefined)
          return fail(field, `expected a vote count (integer >= 0), got ${JSON.stringify(v)}`);
        labels.push(votes >= minVotes ? 1 : 0);
      } else {
        const norm = normaliseValue(v);
        if (rule.positive.includes(norm)) labels.push(1);
        else if (rule.negative.includes(norm)) labels.push(0);
        else {
          return fail(
            field,
            `unknown label value ${JSON.stringify(v)} (expected ${rule.positive.join("/")} or ${rule.negative.join("/")})`,
          );
        }
      }
    }
  }

  const record: DataRecord = { id, text, labels, raw: value, line };
  const overall = schema.overall;
  if (overall?.kind === "field") {
    const v = value[overall.field];
    if (!isMissing(v)) {
      const s = String(v).trim();
      if (overall.values && !overall.values.includes(s)) {
        return fail(
          overall.field,
          `unknown overall label ${JSON.stringify(v)} (expected ${overall.values.join(" | ")})`,
        );
      }
      record.overall = s;
    }
  } else if (overall?.kind === "votes") {
    const totals = new Map<string, number>();
    for (const level of overall.levels) {
      const votes = parseCount(value[level.field]);
      if (votes === undefined) {
        return fail(
          level.field,
          `expected a vote count (integer >= 0), got ${JSON.stringify(value[level.field])}`,
        );
      }
      totals.set(level.value, (totals.get(level.value) ?? 0) + votes);
    }
    const best = Math.max(...totals.values());
    const winners = [...totals].filter(([, n]) => n === best).map(([v]) => v);
    if (best > 0) record.overall = winners.length === 1 ? winners[0] : overall.tie;
  }
  return record;
}

function duplicateIdWarnings(records: DataRecord[], file: string): string[] {
  const firstLine = new Map<string, number>();
  const warnings: string[] = [];
  for (const r of records) {
    const first = firstLine.get(r.id);
    if (first === undefined) firstLine.set(r.id, r.line);
    else warnings.push(`${file}:${r.line}: duplicate id ${JSON.stringify(r.id)} (first on line ${first})`);
  }
  return warnings;
}
