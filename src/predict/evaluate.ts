// `toxlora eval`: scores a labelled file with a run's classifier and writes the per-label table
// (the prototype's columns, as log.csv), at 0.5 and at the run's tuned thresholds, plus ROC-AUC,
// PR-AUC, micro/macro averages and per-row predictions.
import { mkdir } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { loadDataset } from "../data/load.js";
import { writeJsonAtomic } from "../io/atomic.js";
import { refuseOutputOverInput } from "../io/same-file.js";
import { resolveTrainConfig, type TrainConfig } from "../train/config.js";
import { schemaForConfig } from "../train/data.js";
import { evaluateSplit, writeEvaluationFiles } from "../train/eval-files.js";
import type { EvalReport } from "../train/metrics.js";
import { type LoadClassifierOptions, loadClassifier, readRunConfig } from "./classifier.js";

export interface EvaluateRunResult {
  outDir: string;
  rows: number;
  at05: EvalReport;
  tuned: EvalReport;
  thresholds: number[];
}

/**
 * Evaluates the run on `dataFile` (read with the run's label schema). Results go to `outDir`
 * (default `<run>/evals/<file name>/`).
 */
export async function evaluateRun(
  runDir: string,
  dataFile: string,
  opts: LoadClassifierOptions & {
    outDir?: string;
    /** Bootstrap resamples for the 95% intervals (default 1000; 0 = none). */
    bootstrap?: number;
    /** Seed of the bootstrap (default 42). */
    seed?: number;
  } = {},
): Promise<EvaluateRunResult> {
  const run = await readRunConfig(runDir);
  const cfg = resolveTrainConfig(run.train as TrainConfig);
  const data = await loadDataset(dataFile, schemaForConfig(cfg), { lenient: cfg.lenient });
  if (data.labels.join() !== run.labels.join()) {
    throw new Error(`${dataFile}: labels [${data.labels}] differ from the run's [${run.labels}]`);
  }
  const outDir = opts.outDir ?? join(runDir, "evals", basename(dataFile, extname(dataFile)));
  refuseOutputOverInput(
    ["eval.json", "predictions.jsonl", "log.csv", "log_tuned.csv"].map((f) => join(outDir, f)),
    [dataFile],
  );
  const clf = await loadClassifier(runDir, opts);
  try {
    const probs = await clf.probs(data.records.map((r) => r.text));
    const truth = data.records.map((r) => r.labels);
    const { at05, tuned } = evaluateSplit(probs, truth, run.labels, clf.thresholds, {
      resamples: opts.bootstrap ?? 1000,
      seed: opts.seed ?? 42,
    });
    await mkdir(outDir, { recursive: true });
    await writeJsonAtomic(join(outDir, "eval.json"), {
      data: dataFile,
      rows: data.records.length,
      at05,
      tuned,
      thresholds: clf.thresholds,
    });
    await writeEvaluationFiles(
      outDir,
      "predictions.jsonl",
      { records: data.records, labels: run.labels, probs },
      at05,
      tuned,
    );
    return { outDir, rows: data.records.length, at05, tuned, thresholds: clf.thresholds };
  } finally {
    await clf.close();
  }
}
