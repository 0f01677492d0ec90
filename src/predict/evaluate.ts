// `toxlora eval`: scores a labelled file with a run's classifier and writes the per-label table
// (the prototype's columns, as log.csv), at 0.5 and at the run's tuned thresholds, plus ROC-AUC,
// PR-AUC, micro/macro averages and per-row predictions.
import { mkdir } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { type DataRecord, type Dataset, loadDataset } from "../data/load.js";
import type { DataFormat } from "../data/readers.js";
import { type SchemaOptions, schemaFromOptions } from "../data/schema.js";
import { writeJsonAtomic } from "../io/atomic.js";
import { refuseOutputOverInput } from "../io/same-file.js";
import { resolveTrainConfig, type TrainConfig } from "../run/config.js";
import { schemaForConfig } from "../run/data.js";
import { evaluateSplit, writeEvaluationFiles } from "../run/eval-files.js";
import { type DegenerateLabel, degenerateLabels } from "../run/label-checks.js";
import type { EvalReport } from "../run/metrics.js";
import type { BaseQuantization } from "../run/types.js";
import { type LoadClassifierOptions, loadClassifier, readRunConfig } from "./classifier.js";

export interface EvaluateRunResult {
  outDir: string;
  rows: number;
  at05: EvalReport;
  tuned: EvalReport;
  thresholds: number[];
  /** Labels whose decisions mean nothing on this data (src/run/label-checks.ts), also in eval.json. */
  degenerate: Record<string, DegenerateLabel>;
  /** How the base ran (scheme, block size, kernel), also in eval.json; null for a tfidf-lr run. */
  quantization: BaseQuantization | null;
}

/**
 * Evaluates the run's labels on `dataFile`, read with the run's label schema or with `schema` when
 * given (e.g. the original file of a run trained on a `keep-labels` subset). The file may hold more
 * labels than the run; it must hold all of the run's. Results go to `outDir` (default
 * `<run>/evals/<file name>/`).
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
    /** How to read `dataFile` (default: the schema the run was trained with). */
    schema?: SchemaOptions;
    inputFormat?: DataFormat;
    lenient?: boolean;
  } = {},
): Promise<EvaluateRunResult> {
  const run = await readRunConfig(runDir);
  const cfg = resolveTrainConfig(run.train as TrainConfig);
  const schema = opts.schema ? schemaFromOptions(opts.schema) : schemaForConfig(cfg);
  const loaded = await loadDataset(dataFile, schema, {
    lenient: opts.lenient ?? cfg.lenient,
    format: opts.inputFormat ?? cfg.inputFormat,
  });
  for (const w of loaded.warnings) opts.onNotice?.(w);
  const data = { ...loaded, records: runLabelsOf(loaded, run.labels, dataFile, opts.onNotice) };
  const outDir = opts.outDir ?? join(runDir, "evals", basename(dataFile, extname(dataFile)));
  refuseOutputOverInput(
    ["eval.json", "predictions.jsonl", "log.csv", "log_tuned.csv"].map((f) => join(outDir, f)),
    [dataFile],
  );
  // It checks this data's labels itself (below), so not the run's test evaluation again.
  const clf = await loadClassifier(runDir, { ...opts, evalWarnings: false });
  try {
    const probs = await clf.probs(data.records.map((r) => r.text));
    const truth = data.records.map((r) => r.labels);
    const { at05, tuned } = evaluateSplit(probs, truth, run.labels, clf.thresholds, {
      resamples: opts.bootstrap ?? 1000,
      seed: opts.seed ?? 42,
    });
    // Scores as the classifier gives them (calibrated when the run is).
    const degenerate = degenerateLabels(run.labels, clf.thresholds, [
      { name: "data", scores: probs, probs, truth },
    ]);
    await mkdir(outDir, { recursive: true });
    const summary = {
      rows: data.records.length,
      at05,
      tuned,
      thresholds: clf.thresholds,
      degenerate,
      // The numbers depend on it: a quantized base or the qgemm kernel moves the probabilities.
      quantization: clf.quantization,
    };
    await writeJsonAtomic(join(outDir, "eval.json"), { data: dataFile, ...summary });
    await writeEvaluationFiles(
      outDir,
      "predictions.jsonl",
      { records: data.records, labels: run.labels, probs },
      at05,
      tuned,
    );
    return { outDir, ...summary };
  } finally {
    await clf.close();
  }
}

/**
 * The records with their truth reduced to the run's labels, in the run's order. A label the run
 * has and the file lacks is an error; labels only the file has are left out (and said).
 */
function runLabelsOf(
  data: Dataset,
  runLabels: readonly string[],
  file: string,
  onNotice?: (line: string) => void,
): DataRecord[] {
  const columns = runLabels.map((l) => data.labels.indexOf(l));
  const missing = runLabels.filter((_, j) => columns[j] === -1);
  if (missing.length > 0)
    throw new Error(
      `${file}: no label ${missing.join(", ")} (the file has ${data.labels.join(", ")}; the run predicts ` +
        `${runLabels.join(", ")}); read it with the right --preset or --labels`,
    );
  const extra = data.labels.filter((l) => !runLabels.includes(l));
  if (extra.length > 0)
    onNotice?.(
      `evaluating the run's labels (${runLabels.join(", ")}); the file's ${extra.join(", ")} are left out`,
    );
  return data.records.map((r) => ({ ...r, labels: columns.map((c) => r.labels[c] as number) }));
}
