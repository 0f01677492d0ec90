// k-fold cross-validation: every row is tested exactly once, by a model that never trained on it.
//
// The rows of --data are assigned to k folds by the same multilabel iterative stratification as
// the train/test split (src/data/split.ts), so each fold keeps every label's rate. Fold i is an
// ordinary run (`train()` with the other folds as --data and fold i as --eval; the validation
// split is still held out of the training folds for thresholds, best checkpoint and calibration),
// written to <parent>/fold-<i>/. Folds already complete are skipped and an interrupted LoRA fold
// resumes from its checkpoint, so `toxlora cv` can be rerun until it finishes; <parent>/cv-plan.json
// makes sure a rerun is the same cross-validation (same config, same data file, same folds).
import { existsSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  type BaselineConfigInput,
  type BaseOnlyOptions,
  isBaselineModel,
  refuseBaseOptions,
} from "../baseline/config.js";
import { loadDataset } from "../data/load.js";
import { iterativeStratification } from "../data/split.js";
import { toJsonl } from "../data/write.js";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.js";
import { CI_METRICS, type CiMetric } from "../run/bootstrap.js";
import type { TrainConfigInput } from "../run/config.js";
import { type DataConfig, schemaForConfig, sha256File } from "../run/data.js";
import {
  type AverageMetrics,
  type Confusion,
  evaluate,
  type LabelMetrics,
  scoresFromConfusion,
} from "../run/metrics.js";
import { RUN_FILES } from "../run/types.js";
import { defaultRunDir, type TrainOptions, train } from "./trainer.js";

/** Mean and sample standard deviation over folds (null when no fold defines the metric). */
export interface MeanSd {
  mean: number | null;
  sd: number | null;
}

export interface CvSummary {
  folds: number;
  seed: number;
  data: string;
  rows: number;
  labels: string[];
  /** Rows and tuned macro F1 per fold. */
  perFold: { fold: number; dir: string; rows: number; macroF1: number; microF1: number }[];
  /** Per label and average: mean ± sd of each metric over the folds (at each fold's tuned thresholds). */
  meanSd: {
    perLabel: Record<string, Record<CiMetric, MeanSd>>;
    micro: Record<CiMetric, MeanSd>;
    macro: Record<CiMetric, MeanSd>;
  };
  /**
   * Pooled out-of-fold metrics: every row scored once by the fold model that did not train on it.
   * Precision/recall/F1 come from the summed confusion tables (each row judged at its own fold's
   * thresholds); ROC-AUC and PR-AUC from the pooled probabilities.
   */
  pooled: { perLabel: Record<string, LabelMetrics>; micro: AverageMetrics; macro: AverageMetrics };
}

export const CV_FILE = "cv.json";
const PLAN_FILE = "cv-plan.json";

/** Fold of each row: sizes as equal as possible, rows assigned by iterative stratification. */
export function assignFolds(labels: readonly number[][], folds: number, seed: number): number[] {
  const n = labels.length;
  if (!Number.isInteger(folds) || folds < 2) throw new Error(`--folds must be an integer ≥ 2, got ${folds}`);
  if (n < folds) throw new Error(`${n} rows are too few for ${folds} folds`);
  const sizes = Array.from({ length: folds }, (_, k) => Math.floor(n / folds) + (k < n % folds ? 1 : 0));
  return iterativeStratification(labels, sizes, seed);
}

function meanSd(values: (number | null)[]): MeanSd {
  const xs = values.filter((v): v is number => v !== null && Number.isFinite(v));
  if (xs.length === 0) return { mean: null, sd: null };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd };
}

function metricsMeanSd(entries: (LabelMetrics | AverageMetrics)[]): Record<CiMetric, MeanSd> {
  return Object.fromEntries(CI_METRICS.map((m) => [m, meanSd(entries.map((e) => e[m]))])) as Record<
    CiMetric,
    MeanSd
  >;
}

interface FoldResult {
  dir: string;
  tuned: {
    rows: number;
    perLabel: Record<string, LabelMetrics>;
    micro: AverageMetrics;
    macro: AverageMetrics;
    macroF1: number;
    microF1: number;
  };
  predictions: {
    truth: Record<string, number>;
    labels?: Record<string, number>;
    probs: Record<string, number>;
  }[];
}

async function readFold(dir: string): Promise<FoldResult> {
  const ev = JSON.parse(await readFile(join(dir, RUN_FILES.eval), "utf8"));
  const text = await readFile(join(dir, RUN_FILES.evalPredictions), "utf8");
  const predictions = text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l));
  return { dir, tuned: ev.tuned, predictions };
}

/** The summary of finished folds (see {@link CvSummary}). */
export function summarizeFolds(
  folds: FoldResult[],
  labels: readonly string[],
  meta: { seed: number; data: string },
): CvSummary {
  const pooledProbs: number[][] = [];
  const pooledTruth: number[][] = [];
  for (const f of folds) {
    for (const p of f.predictions) {
      const truth = p.truth ?? p.labels ?? {};
      pooledProbs.push(labels.map((l) => p.probs[l] as number));
      pooledTruth.push(labels.map((l) => truth[l] as number));
    }
  }
  // AUCs from the pooled scores; thresholded metrics from the folds' own confusion tables.
  const pooledEval = evaluate(pooledProbs, pooledTruth, labels);
  const perLabel: Record<string, LabelMetrics> = {};
  const sum: Confusion = { tn: 0, fp: 0, fn: 0, tp: 0 };
  for (const l of labels) {
    const c: Confusion = { tn: 0, fp: 0, fn: 0, tp: 0 };
    for (const f of folds) {
      const m = f.tuned.perLabel[l] as LabelMetrics;
      for (const k of ["tn", "fp", "fn", "tp"] as const) c[k] += m[k];
    }
    for (const k of ["tn", "fp", "fn", "tp"] as const) sum[k] += c[k];
    const base = pooledEval.perLabel[l] as LabelMetrics;
    // Each fold has its own thresholds: there is no single one (NaN, null in cv.json).
    perLabel[l] = { ...base, ...scoresFromConfusion(c), ...c, support: c.tp + c.fn, threshold: Number.NaN };
  }
  const all = labels.map((l) => perLabel[l] as LabelMetrics);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const micro: AverageMetrics = {
    ...scoresFromConfusion(sum),
    rocAuc: pooledEval.micro.rocAuc,
    prAuc: pooledEval.micro.prAuc,
  };
  const macro: AverageMetrics = {
    accuracy: mean(all.map((m) => m.accuracy)),
    precision: mean(all.map((m) => m.precision)),
    recall: mean(all.map((m) => m.recall)),
    f1: mean(all.map((m) => m.f1)),
    rocAuc: pooledEval.macro.rocAuc,
    prAuc: mean(all.map((m) => m.prAuc)),
  };
  return {
    folds: folds.length,
    seed: meta.seed,
    data: meta.data,
    rows: pooledProbs.length,
    labels: [...labels],
    perFold: folds.map((f, i) => ({
      fold: i + 1,
      dir: f.dir,
      rows: f.tuned.rows,
      macroF1: f.tuned.macroF1,
      microF1: f.tuned.microF1,
    })),
    meanSd: {
      perLabel: Object.fromEntries(
        labels.map((l) => [l, metricsMeanSd(folds.map((f) => f.tuned.perLabel[l] as LabelMetrics))]),
      ),
      micro: metricsMeanSd(folds.map((f) => f.tuned.micro)),
      macro: metricsMeanSd(folds.map((f) => f.tuned.macro)),
    },
    pooled: { perLabel, micro, macro },
  };
}

export interface CvResult {
  dir: string;
  summary: CvSummary;
  /** True when the run stopped early because of `signal` (rerun to continue). */
  interrupted: boolean;
}

/** A fold run is complete when its evaluation files are written. */
function foldComplete(dir: string): boolean {
  return existsSync(join(dir, RUN_FILES.eval)) && existsSync(join(dir, RUN_FILES.evalPredictions));
}

/**
 * k-fold cross-validation of a training config (LoRA or tfidf-lr). `config.out` is the parent
 * directory (default outputs/<model>/<date>/<time>-cv/); rerunning with the same config resumes.
 */
export async function crossValidate(
  config: TrainConfigInput | BaselineConfigInput,
  folds: number,
  options: TrainOptions & { onFold?: (fold: number, folds: number, status: string) => void } = {},
): Promise<CvResult> {
  if (config.eval) throw new Error("cv uses every row of --data as test data once; --eval does not apply");
  // Before anything is written (each fold's train() would refuse them too).
  if (isBaselineModel(config.model)) refuseBaseOptions(config as BaseOnlyOptions);
  const parent = resolve(config.out ?? `${defaultRunDir(config.model)}-cv`);
  const seed = config.seed ?? 42;
  const data = resolve(config.data);
  const base = { ...config, out: undefined, resume: undefined };
  const plan = { folds, seed, data, sha256: await sha256File(data), config: base };
  const planFile = join(parent, PLAN_FILE);
  if (existsSync(planFile)) {
    const saved = JSON.parse(await readFile(planFile, "utf8"));
    if (JSON.stringify(saved) !== JSON.stringify(plan))
      throw new Error(
        `${parent} holds a different cross-validation (config, data or folds differ); choose another --out`,
      );
  } else {
    await mkdir(parent, { recursive: true });
    await writeJsonAtomic(planFile, plan);
  }

  const ds = await loadDataset(data, schemaForConfig(config as unknown as DataConfig), {
    lenient: config.lenient,
  });
  const fold = assignFolds(
    ds.records.map((r) => r.labels),
    folds,
    seed,
  );
  const results: FoldResult[] = [];
  for (let k = 0; k < folds; k++) {
    const dir = join(parent, `fold-${k + 1}`);
    if (foldComplete(dir)) {
      options.onFold?.(k + 1, folds, "complete");
      results.push(await readFold(dir));
      continue;
    }
    const files = {
      train: join(parent, "data", `fold-${k + 1}-train.jsonl`),
      test: join(parent, "data", `fold-${k + 1}-test.jsonl`),
    };
    await mkdir(join(parent, "data"), { recursive: true });
    await writeFileAtomic(files.train, toJsonl(ds.records.filter((_, i) => fold[i] !== k).map((r) => r.raw)));
    await writeFileAtomic(files.test, toJsonl(ds.records.filter((_, i) => fold[i] === k).map((r) => r.raw)));
    // A LoRA fold with a checkpoint resumes; anything else unfinished starts again.
    const resumable =
      !isBaselineModel(config.model) && existsSync(join(dir, "checkpoint", "trainer_state.json"));
    if (!resumable) await rm(dir, { recursive: true, force: true });
    options.onFold?.(k + 1, folds, resumable ? "resuming" : "training");
    const r = await train(
      { ...base, data: files.train, eval: files.test, inputFormat: "jsonl", out: dir, resume: resumable },
      options,
    );
    if (r.interrupted) {
      return { dir: parent, summary: summarizeFolds(results, ds.labels, { seed, data }), interrupted: true };
    }
    results.push(await readFold(dir));
  }
  const summary = summarizeFolds(results, ds.labels, { seed, data });
  await writeJsonAtomic(join(parent, CV_FILE), summary);
  return { dir: parent, summary, interrupted: false };
}
