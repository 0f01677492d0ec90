// The files of an evaluation, written the same way by `train` (test split) and `eval`:
// the prototype's table as log.csv (at 0.5) and log_tuned.csv (at the tuned thresholds), and one
// JSON line per row with its text, `truth` and the scored fields of src/run/output.ts at the
// tuned thresholds (read by the report).
import { join } from "node:path";
import type { DataRecord } from "../data/load.js";
import { writeFileAtomic } from "../io/atomic.js";
import { addBootstrapIntervals } from "./bootstrap.js";
import { type EvalReport, evaluate, formatPrototypeTable } from "./metrics.js";
import { decide, scoredFields } from "./output.js";

/**
 * The evaluation of one split at 0.5 and at the tuned thresholds, with 95% bootstrap intervals
 * from `bootstrap` resamples of the rows (0 = none), seeded by `seed`.
 */
export function evaluateSplit(
  probs: readonly (readonly number[])[],
  truth: readonly (readonly number[])[],
  labels: readonly string[],
  thresholds: readonly number[],
  bootstrap: { resamples: number; seed: number },
): { at05: EvalReport; tuned: EvalReport } {
  const [at05, tuned] = addBootstrapIntervals(
    [evaluate(probs, truth, labels), evaluate(probs, truth, labels, thresholds)],
    probs,
    truth,
    bootstrap,
  );
  return { at05, tuned };
}

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
          truth: Object.fromEntries(labels.map((l, j) => [l, r.labels[j]])),
          ...scoredFields(labels, probs[i], decide(probs[i], tuned.thresholds)),
        }),
      )
      .map((line) => `${line}\n`)
      .join(""),
  );
}
