// The files of an evaluation, written the same way by `train` (test split) and `eval`:
// the prototype's table as log.csv (at 0.5) and log_tuned.csv (at the tuned thresholds), and one
// JSON line per row with its text, truth and probabilities (read by the report).
import { join } from "node:path";
import type { DataRecord } from "../data/load.js";
import { writeFileAtomic } from "../io/atomic.js";
import { type EvalReport, formatPrototypeTable } from "./metrics.js";

export async function writeEvaluationFiles(
  dir: string,
  predictionsFile: string,
  rows: { records: readonly DataRecord[]; labels: readonly string[]; probs: readonly (readonly number[])[] },
  at05: EvalReport,
  tuned: EvalReport,
): Promise<void> {
  await writeFileAtomic(join(dir, "log.csv"), formatPrototypeTable(at05).csv);
  await writeFileAtomic(join(dir, "log_tuned.csv"), formatPrototypeTable(tuned).csv);
  const { records, labels, probs } = rows;
  await writeFileAtomic(
    join(dir, predictionsFile),
    records
      .map((r, i) =>
        JSON.stringify({
          id: r.id,
          text: r.text,
          labels: Object.fromEntries(labels.map((l, j) => [l, r.labels[j]])),
          probs: Object.fromEntries(labels.map((l, j) => [l, probs[i][j]])),
        }),
      )
      .map((line) => `${line}\n`)
      .join(""),
  );
}
