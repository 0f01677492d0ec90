// The end of every training run, LoRA (src/train/) and tf-idf baseline (src/baseline/) alike: once
// the final model's validation and test probabilities are known, calibrate (--calibrate), tune
// thresholds on validation, and write thresholds.json, eval.json, log.csv, log_tuned.csv and
// predictions/eval.jsonl (RUN_FILES in ./types.ts); and the metrics.jsonl line of a validation.
import { join } from "node:path";
import type { DataRecord } from "../data/load.js";
import { writeJsonAtomic } from "../io/atomic.js";
import { type CalibrationMethod, calibrateRun } from "./calibration.js";
import { evaluateSplit, writeEvaluationFiles } from "./eval-files.js";
import { degenerateLabels } from "./label-checks.js";
import { type EvalReport, formatPrototypeTable, MIN_TUNING_POSITIVES, tuneThresholds } from "./metrics.js";
import type { Progress } from "./progress.js";
import type { TrainResult } from "./train-contract.js";
import { RUN_FILES } from "./types.js";

/** What a trainer hands to {@link finishRun}. */
export interface RunOutcome {
  runDir: string;
  labels: string[];
  cfg: { calibrate?: CalibrationMethod; bootstrap: number; seed: number };
  /** The final model's validation probabilities and truth; null without a validation split. */
  valid: { probs: number[][]; truth: number[][] } | null;
  /**
   * The final model's test probabilities (uncalibrated) and the test loss: the model's own loss,
   * or how to compute it from the final (calibrated) probabilities.
   */
  test: { records: DataRecord[]; probs: number[][]; loss: number | ((probs: number[][]) => number) };
  /** eval.json's and the result's bookkeeping. */
  summary: { bestStep: number; steps: number; trainSeconds: number };
}

/** Calibrates, tunes thresholds, writes the run's evaluation files and returns the train result. */
export async function finishRun(run: RunOutcome, progress: Progress): Promise<TrainResult> {
  const { runDir, labels, cfg, valid, test, summary } = run;
  // With --calibrate, both splits' probabilities are calibrated before thresholds are tuned.
  const calibrated = await calibrateRun(runDir, cfg.calibrate, labels, valid, test.probs);
  const thresholds =
    valid && calibrated.valid
      ? tuneThresholds(calibrated.valid, valid.truth, { minPositives: MIN_TUNING_POSITIVES })
      : labels.map(() => 0.5);
  await writeJsonAtomic(join(runDir, RUN_FILES.thresholds), {
    labels,
    thresholds,
    tunedOn: valid ? "valid" : null,
  });
  const probs = calibrated.test;
  const truth = test.records.map((r) => r.labels);
  // Labels the model has not learned (constant scores) or that put every row in one class.
  const degenerate = degenerateLabels(labels, thresholds, [
    ...(valid && calibrated.valid
      ? [{ name: "validation", scores: valid.probs, probs: calibrated.valid, truth: valid.truth }]
      : []),
    { name: "test", scores: test.probs, probs, truth },
  ]);
  const { at05, tuned } = evaluateSplit(probs, truth, labels, thresholds, {
    resamples: cfg.bootstrap,
    seed: cfg.seed,
  });
  await writeJsonAtomic(join(runDir, RUN_FILES.eval), {
    split: "test",
    rows: test.records.length,
    loss: typeof test.loss === "number" ? test.loss : test.loss(probs),
    at05,
    tuned,
    thresholds,
    ...summary,
    degenerate,
  });
  await writeEvaluationFiles(
    runDir,
    RUN_FILES.evalPredictions,
    { records: test.records, labels, probs },
    at05,
    tuned,
  );
  progress.log(
    `test (${test.records.length} rows) at tuned thresholds:\n${formatPrototypeTable(tuned).text}`,
  );
  for (const d of Object.values(degenerate)) progress.warn(d.warning);
  return {
    runDir,
    labels,
    eval: tuned,
    evalAt05: at05,
    thresholds,
    degenerate,
    ...summary,
    interrupted: false,
  };
}

/** metrics.jsonl's line for a validation evaluation (both trainers write it the same way). */
export function validEvalLine(
  at: { step: number; epoch: number; loss: number },
  report: EvalReport,
  labels: string[],
) {
  const perLabel = Object.fromEntries(
    labels.map((l) => {
      const x = report.perLabel[l];
      return [l, { f1: x.f1, precision: x.precision, recall: x.recall, prAuc: x.prAuc, rocAuc: x.rocAuc }];
    }),
  );
  return {
    type: "eval",
    split: "valid",
    ...at,
    macroF1: report.macroF1,
    microF1: report.microF1,
    macroPrAuc: report.macro.prAuc,
    perLabel,
  };
}
