// The tfidf-lr trainer: the same data preparation and the same run directory as a LoRA run
// (config.json, manifest.json, metrics.jsonl, thresholds.json, eval.json, log.csv, predictions/),
// with a character n-gram TF-IDF + logistic regression model in <run>/model/ instead of an adapter.
//
//   data → split (+ balance) → training rows (with --resample-each-epoch: every epoch's draw,
//   concatenated) → fit the vectorizer and one L-BFGS logistic regression per label → validation:
//   metrics (+ calibration.json with --calibrate) + tuned thresholds → test: eval.json, log.csv,
//   predictions/eval.jsonl.
import { existsSync } from "node:fs";
import { appendFile, mkdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { DataRecord } from "../data/load.js";
import { writeJsonAtomic } from "../io/atomic.js";
import { epochRecords, labelRates, prepareData, resolvePosWeight } from "../run/data.js";
import { finishRun, validEvalLine } from "../run/finish.js";
import { evaluate } from "../run/metrics.js";
import { Progress } from "../run/progress.js";
import { defaultRunDir, type TrainOptions, type TrainResult } from "../run/train-contract.js";
import { RUN_FILES } from "../run/types.js";
import { VERSION } from "../version.js";
import { BASELINE_MODEL_DIR } from "./classifier.js";
import {
  BASELINE_MODEL,
  type BaselineConfig,
  type BaselineConfigInput,
  resolveBaselineConfig,
} from "./config.js";
import { log1pExp } from "./logistic.js";
import { checkBothClasses, fitTfidfLr, saveTfidfLr, type TfidfLrModel } from "./model.js";

/** Mean binary cross-entropy over rows and labels. */
function meanBce(probs: number[][], truth: number[][]): number {
  let s = 0;
  let n = 0;
  probs.forEach((row, i) => {
    row.forEach((p, j) => {
      // −log σ(z) = log(1 + e^{−z}) with z = logit(p), clamped like PyTorch's BCE (log ≥ −100).
      const z = Math.log(p) - Math.log1p(-p);
      const l = truth[i][j] ? log1pExp(-z) : log1pExp(z);
      s += Number.isFinite(l) ? Math.min(l, 100) : 100;
      n++;
    });
  });
  return n ? s / n : 0;
}

/** The rows the model is fitted on: the training split, or every epoch's re-sampled draw in turn. */
function trainingRows(train: DataRecord[], labels: string[], cfg: BaselineConfig): DataRecord[][] {
  if (!cfg.resampleEachEpoch) return [train];
  return Array.from({ length: cfg.epochs }, (_, e) => epochRecords(train, labels, cfg, e + 1));
}

/** Trains a tfidf-lr baseline as `config` says and writes a complete run directory. */
export async function trainBaseline(
  input: BaselineConfigInput,
  options: TrainOptions = {},
): Promise<TrainResult> {
  const cfg = resolveBaselineConfig(input);
  if (cfg.resume) throw new Error("--resume: a tfidf-lr run trains in one go and has nothing to resume");
  const runDir = resolve(cfg.out ?? defaultRunDir(BASELINE_MODEL));
  if (existsSync(join(runDir, RUN_FILES.config)))
    throw new Error(`${runDir} already holds a run; choose another --out`);
  const progress = new Progress("train", options.progress ?? "auto");
  const data = await prepareData(cfg);
  for (const w of data.manifest.warnings) progress.warn(w);
  const labels = data.labels;
  const epochs = trainingRows(data.train, labels, cfg);
  const rows = epochs.flat();
  const posWeight = resolvePosWeight(cfg.posWeight, rows, labels);
  checkBothClasses(
    rows.map((r) => r.labels),
    labels,
  );

  await mkdir(runDir, { recursive: true });
  await writeJsonAtomic(join(runDir, RUN_FILES.config), {
    toxloraVersion: VERSION,
    labels,
    model: BASELINE_MODEL,
    modelDir: BASELINE_MODEL_DIR,
    family: BASELINE_MODEL,
    head: "multilabel",
    posWeight: posWeight ?? null,
    train: cfg,
  });
  await writeJsonAtomic(join(runDir, RUN_FILES.manifest), data.manifest);
  await rm(join(runDir, RUN_FILES.metrics), { force: true });
  const logMetric = (rec: object) => appendFile(join(runDir, RUN_FILES.metrics), `${JSON.stringify(rec)}\n`);
  for (const [e, recs] of epochs.entries())
    await logMetric({
      type: "epoch",
      epoch: e + 1,
      rows: recs.length,
      ids: recs.map((r) => r.id),
      labelRates: labelRates(recs, labels),
    });

  const t0 = performance.now();
  progress.log(`fitting tfidf-lr on ${rows.length} rows, ${labels.length} labels`);
  const fitted = fitTfidfLr(
    rows.map((r) => r.text),
    rows.map((r) => r.labels),
    labels,
    {
      tfidf: {
        ngram: cfg.ngram,
        minDf: cfg.minDf,
        sublinearTf: true,
        lowercase: true,
        normalization: "NFKC",
      },
      C: cfg.C,
      classWeight: cfg.classWeight,
      posWeight,
      maxIter: cfg.maxIter,
      tol: cfg.tol,
    },
    (fit) => {
      const how = fit.converged
        ? `converged (${fit.reason})`
        : `NOT converged (${fit.reason}): raise --max-iter or loosen --tol`;
      progress.log(
        `${fit.label}: ${fit.iterations} L-BFGS iterations, ${how}, max|grad| ${fit.gradInf.toExponential(2)}`,
      );
    },
  );
  const trainSeconds = (performance.now() - t0) / 1000;
  const { model, fits } = fitted;
  const vocab = model.vectorizer.model.vocabulary.length;
  progress.log(
    `vocabulary: ${vocab} character n-grams, ${fitted.nnz} non-zeros; fitted in ${trainSeconds.toFixed(2)} s`,
  );
  for (const fit of fits) await logMetric({ type: "fit", ...fit, terms: vocab });
  await saveTfidfLr(join(runDir, BASELINE_MODEL_DIR), model);
  const steps = fits.reduce((s, f) => s + f.iterations, 0);
  return finish(runDir, cfg, model, data, { trainSeconds, steps, logMetric, progress });
}

/** Validation metrics in metrics.jsonl, then the run's shared end (src/run/finish.ts). */
async function finish(
  runDir: string,
  cfg: BaselineConfig,
  model: TfidfLrModel,
  data: Awaited<ReturnType<typeof prepareData>>,
  ctx: { trainSeconds: number; steps: number; logMetric: (rec: object) => Promise<void>; progress: Progress },
): Promise<TrainResult> {
  const labels = data.labels;
  let valid: { probs: number[][]; truth: number[][] } | null = null;
  if (data.valid.length > 0) {
    const probs = model.probs(data.valid.map((r) => r.text));
    const truth = data.valid.map((r) => r.labels);
    valid = { probs, truth };
    const report = evaluate(probs, truth, labels);
    const at = { step: ctx.steps, epoch: cfg.epochs, loss: meanBce(probs, truth) };
    await ctx.logMetric(validEvalLine(at, report, labels));
  }
  const truth = data.test.map((r) => r.labels);
  return finishRun(
    {
      runDir,
      labels,
      cfg,
      valid,
      // Its loss is that of the final (calibrated) probabilities.
      test: {
        records: data.test,
        probs: model.probs(data.test.map((r) => r.text)),
        loss: (p) => meanBce(p, truth),
      },
      summary: { bestStep: ctx.steps, steps: ctx.steps, trainSeconds: ctx.trainSeconds },
    },
    ctx.progress,
  );
}
