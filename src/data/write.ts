// Writing records back out: JSON lines with every original field, so a balanced or split file
// reads like the input (and loads with the same schema).
import { writeFileAtomic } from "../io/atomic.js";
import type { DataRecord } from "./load.js";
import { isMultiHot, type LabelSchema } from "./schema.js";

/**
 * A record's original fields, minus the label fields of schema labels not in `keptLabels` (the
 * columns keep-labels dropped). A list-valued label field is rewritten to the kept labels.
 * `record.labels` is in `keptLabels` order, as balance leaves it.
 */
export function outputRow(
  record: DataRecord,
  schema: LabelSchema,
  keptLabels: readonly string[],
): Record<string, unknown> {
  const row: Record<string, unknown> = { ...record.raw };
  if (schema.values.kind === "list") {
    const field = schema.values.field;
    const original = row[field];
    const keptIdx = keptLabels.map((n) => schema.labels.findIndex((l) => l.name === n));
    row[field] = isMultiHot(original, schema.labels.length)
      ? keptIdx.map((i) => original[i])
      : keptLabels.filter((_, k) => record.labels[k] === 1);
    return row;
  }
  for (const l of schema.labels) if (!keptLabels.includes(l.name)) delete row[l.field];
  return row;
}

export function toJsonl(rows: readonly unknown[]): string {
  return rows.map((r) => `${JSON.stringify(r)}\n`).join("");
}

/** Writes records as JSON lines, atomically. */
export async function writeRecordsJsonl(
  file: string,
  records: readonly DataRecord[],
  schema: LabelSchema,
  keptLabels: readonly string[] = schema.labels.map((l) => l.name),
): Promise<void> {
  await writeFileAtomic(file, toJsonl(records.map((r) => outputRow(r, schema, keptLabels))));
}
