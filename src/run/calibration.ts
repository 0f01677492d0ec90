// Probability calibration: how well predicted probabilities match observed rates, and a per-label
// rescaling of the logit fitted on the validation split.
//
// - Reliability: rows are put in ECE_BINS equal-width bins of predicted probability ([0, 0.1),
//   [0.1, 0.2), …, [0.9, 1.0]; the last bin includes 1); in each bin the mean predicted probability
//   is compared with the share of positive rows. The expected calibration error is the bins' mean
//   absolute gap weighted by their row counts: ECE = Σ_b (n_b / n) · |mean p_b − rate_b|.
// - Scaling: with z = logit(p), the calibrated probability is σ(scale · z + bias).
//   `temperature` fits scale = 1/T only (bias 0), `platt` fits both (Platt 1999, with his
//   smoothed targets (N₊+1)/(N₊+2) and 1/(N₋+2), as scikit-learn's sigmoid calibration).
//   Both keep scale > 0, so the order of the scores, and every ROC-AUC and PR-AUC, is unchanged.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeJsonAtomic } from "../io/atomic.js";
import { RUN_FILES } from "./types.js";

/** Number of equal-width probability bins for reliability diagrams and ECE. */
export const ECE_BINS = 10;

export const CALIBRATION_METHODS = ["temperature", "platt"] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];

/** One bin of a reliability diagram. */
export interface ReliabilityBin {
  lo: number;
  hi: number;
  count: number;
  /** Mean predicted probability of the bin's rows (NaN when empty). */
  meanProb: number;
  /** Share of the bin's rows whose truth is positive (NaN when empty). */
  positiveRate: number;
}

/** A run's calibration (`calibration.json`): calibrated p = σ(scale[j] · logit(p) + bias[j]). */
export interface Calibration {
  method: CalibrationMethod;
  labels: string[];
  scale: number[];
  bias: number[];
  /** The split it was fitted on. */
  fittedOn: "valid";
  rows: number;
  /** Validation log-loss per label before and after. */
  logLoss: { before: number[]; after: number[] };
  /** Validation ECE per label before and after, with ECE_BINS equal-width bins. */
  ece: { bins: number; before: number[]; after: number[] };
  /** Labels left uncalibrated (e.g. a single class on validation), with the reason. */
  notes: string[];
}

/**
 * A run's calibration, or null when it has none. Checks that it covers the run's labels, in order.
 */
export async function readCalibration(
  runDir: string,
  labels: readonly string[],
): Promise<Calibration | null> {
  const file = join(runDir, RUN_FILES.calibration);
  if (!existsSync(file)) return null;
  const cal = JSON.parse(await readFile(file, "utf8")) as Calibration;
  const ok =
    Array.isArray(cal.labels) &&
    cal.labels.join("\u0000") === labels.join("\u0000") &&
    cal.scale?.length === labels.length &&
    cal.bias?.length === labels.length &&
    [...cal.scale, ...cal.bias].every(Number.isFinite);
  if (!ok) throw new Error(`${file}: expected scale and bias for the run's labels [${labels.join(", ")}]`);
  return cal;
}

/** Reliability bins of one label (ECE_BINS equal-width bins by default). */
export function reliabilityBins(
  probs: readonly number[],
  truth: readonly number[],
  bins = ECE_BINS,
): ReliabilityBin[] {
  if (probs.length !== truth.length)
    throw new Error(`${probs.length} probabilities for ${truth.length} truths`);
  const sumP = new Float64Array(bins);
  const sumY = new Float64Array(bins);
  const count = new Float64Array(bins);
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i] as number;
    const b = Math.min(bins - 1, Math.max(0, Math.floor(p * bins)));
    sumP[b] += p;
    sumY[b] += truth[i] as number;
    count[b]++;
  }
  return Array.from({ length: bins }, (_, b) => ({
    lo: b / bins,
    hi: (b + 1) / bins,
    count: count[b],
    meanProb: count[b] > 0 ? sumP[b] / count[b] : Number.NaN,
    positiveRate: count[b] > 0 ? sumY[b] / count[b] : Number.NaN,
  }));
}

/** Expected calibration error with `bins` equal-width bins (0 for no rows). */
export function expectedCalibrationError(
  probs: readonly number[],
  truth: readonly number[],
  bins = ECE_BINS,
): number {
  if (probs.length === 0) return 0;
  let ece = 0;
  for (const b of reliabilityBins(probs, truth, bins))
    if (b.count > 0) ece += (b.count / probs.length) * Math.abs(b.meanProb - b.positiveRate);
  return ece;
}

/** Probabilities are clipped to [EPS, 1 − EPS] before taking the logit (a float32 1.0 is common). */
const EPS = 1e-7;

export function logit(p: number): number {
  const q = Math.min(1 - EPS, Math.max(EPS, p));
  return Math.log(q / (1 - q));
}

const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** log(1 + e^x), stable for large |x|. */
const softplus = (x: number): number => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

/** Mean log-loss of probabilities against 0/1 (or smoothed) targets. */
export function logLoss(probs: readonly number[], truth: readonly number[]): number {
  if (probs.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < probs.length; i++) {
    const z = logit(probs[i] as number);
    const t = truth[i] as number;
    s += softplus(z) - t * z; // −[t log σ(z) + (1 − t) log(1 − σ(z))]
  }
  return s / probs.length;
}

/** Mean log-loss of σ(a·z + b) against targets t. */
function scaledLoss(z: readonly number[], t: readonly number[], a: number, b: number): number {
  let s = 0;
  for (let i = 0; i < z.length; i++) {
    const x = a * (z[i] as number) + b;
    s += softplus(x) - (t[i] as number) * x;
  }
  return s / z.length;
}

/**
 * Newton's method with backtracking on the convex loss of σ(a·z + b): `fitBias` false keeps b = 0.
 * a is kept ≥ MIN_SCALE so that the scores' order never flips.
 */
function fitScaling(z: readonly number[], t: readonly number[], fitBias: boolean): { a: number; b: number } {
  const MIN_SCALE = 1e-3;
  let a = 1;
  let b = 0;
  let loss = scaledLoss(z, t, a, b);
  for (let iter = 0; iter < 100; iter++) {
    let ga = 0;
    let gb = 0;
    let haa = 0;
    let hab = 0;
    let hbb = 0;
    for (let i = 0; i < z.length; i++) {
      const zi = z[i] as number;
      const p = sigmoid(a * zi + b);
      const r = p - (t[i] as number);
      const w = p * (1 - p);
      ga += r * zi;
      gb += r;
      haa += w * zi * zi;
      hab += w * zi;
      hbb += w;
    }
    let da: number;
    let db: number;
    if (fitBias) {
      const det = haa * hbb - hab * hab;
      if (!(det > 1e-300)) break;
      da = (hbb * ga - hab * gb) / det;
      db = (haa * gb - hab * ga) / det;
    } else {
      if (!(haa > 1e-300)) break;
      da = ga / haa;
      db = 0;
    }
    let step = 1;
    let improved = false;
    while (step > 1e-10) {
      const na = Math.max(MIN_SCALE, a - step * da);
      const nb = b - step * db;
      const nl = scaledLoss(z, t, na, nb);
      if (nl <= loss) {
        improved = nl < loss - 1e-15;
        a = na;
        b = nb;
        loss = nl;
        break;
      }
      step /= 2;
    }
    if (!improved) break;
  }
  return { a, b };
}

/** σ(scale · logit(p) + bias). */
export function calibrateProb(p: number, scale: number, bias: number): number {
  return sigmoid(scale * logit(p) + bias);
}

/** Applies a calibration to n × L probabilities (columns in `cal.labels` order). */
export function applyCalibration(probs: readonly (readonly number[])[], cal: Calibration): number[][] {
  return probs.map((row) =>
    row.map((p, j) => calibrateProb(p, cal.scale[j] as number, cal.bias[j] as number)),
  );
}

/**
 * Fits one scaling per label on (validation) probabilities and truth. A label whose truth has a
 * single class on these rows is left as is (scale 1, bias 0) and named in `notes`.
 */
export function fitCalibration(
  probs: readonly (readonly number[])[],
  truth: readonly (readonly number[])[],
  labels: readonly string[],
  method: CalibrationMethod,
): Calibration {
  if (probs.length === 0) throw new Error("calibration needs validation rows (--valid-ratio > 0)");
  const scale: number[] = [];
  const bias: number[] = [];
  const notes: string[] = [];
  const before: number[] = [];
  const after: number[] = [];
  const eceBefore: number[] = [];
  const eceAfter: number[] = [];
  labels.forEach((label, j) => {
    const p = probs.map((r) => r[j] as number);
    const y = truth.map((r) => r[j] as number);
    const pos = y.reduce((s, v) => s + v, 0);
    let fit = { a: 1, b: 0 };
    if (pos === 0 || pos === y.length) {
      notes.push(`${label}: one class only on the validation split; left uncalibrated`);
    } else {
      const z = p.map(logit);
      const targets =
        method === "platt" ? y.map((v) => (v === 1 ? (pos + 1) / (pos + 2) : 1 / (y.length - pos + 2))) : y;
      fit = fitScaling(z, targets, method === "platt");
    }
    scale.push(fit.a);
    bias.push(fit.b);
    const q = p.map((v) => calibrateProb(v, fit.a, fit.b));
    before.push(logLoss(p, y));
    after.push(logLoss(q, y));
    eceBefore.push(expectedCalibrationError(p, y));
    eceAfter.push(expectedCalibrationError(q, y));
  });
  return {
    method,
    labels: [...labels],
    scale,
    bias,
    fittedOn: "valid",
    rows: probs.length,
    logLoss: { before, after },
    ece: { bins: ECE_BINS, before: eceBefore, after: eceAfter },
    notes,
  };
}

/**
 * The trainer's calibration step: with a method, fits the calibration on the validation
 * probabilities, writes `calibration.json` into the run and returns both splits' probabilities
 * calibrated (thresholds are then tuned on the calibrated validation probabilities). Without a
 * method, returns the probabilities unchanged.
 */
export async function calibrateRun(
  runDir: string,
  method: CalibrationMethod | undefined,
  labels: readonly string[],
  valid: { probs: number[][]; truth: readonly (readonly number[])[] } | null,
  testProbs: number[][],
): Promise<{ valid: number[][] | null; test: number[][]; calibration: Calibration | null }> {
  if (!method) return { valid: valid?.probs ?? null, test: testProbs, calibration: null };
  if (!valid) throw new Error(`--calibrate ${method} needs a validation split (--valid-ratio > 0)`);
  const calibration = fitCalibration(valid.probs, valid.truth, labels, method);
  await writeJsonAtomic(join(runDir, RUN_FILES.calibration), calibration);
  return {
    valid: applyCalibration(valid.probs, calibration),
    test: applyCalibration(testProbs, calibration),
    calibration,
  };
}
