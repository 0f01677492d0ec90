// Evaluation metrics for multi-label classifiers, with scikit-learn's definitions.
//
// Everything here works on plain arrays: `probs[i][j]` is the predicted probability that row i has
// label j, `labels[i][j]` is its 0/1 truth. A row is predicted positive for label j when
// `probs[i][j] >= thresholds[j]` (the same rule as `Scored.decisions` in src/run/types.ts).
//
// Conventions borrowed from scikit-learn (so numbers can be compared with the Python prototype):
// - precision, recall and F1 are 0 when their denominator is 0 (sklearn's `zero_division="warn"`
//   returns 0, after a warning);
// - ROC-AUC is the trapezoid area under the ROC curve built on distinct score thresholds (ties in
//   scores are one point), exactly `roc_auc_score`; it is undefined (NaN here, `null` in reports) when
//   the truth has a single class;
// - PR-AUC is average precision, `average_precision_score`: sum over thresholds of
//   (R_n - R_{n-1}) * P_n, no interpolation; with no positive row it is 0, as in sklearn.
import type { BootstrapInfo, MetricIntervals } from "./bootstrap.js";

/** Counts of a binary confusion table. */
export interface Confusion {
  tn: number;
  fp: number;
  fn: number;
  tp: number;
}

/** Threshold-dependent scores derived from a confusion table. */
export interface BinaryScores {
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
}

/** Everything reported for one label (JSON-serialisable: undefined AUCs are `null`). */
export interface LabelMetrics extends BinaryScores, Confusion {
  /** Number of rows whose truth is positive (tp + fn). */
  support: number;
  /** Decision threshold used for the confusion table. */
  threshold: number;
  /** ROC-AUC, or `null` when only one class is present in the truth. */
  rocAuc: number | null;
  /** Average precision (PR-AUC); 0 when there is no positive row, as in scikit-learn. */
  prAuc: number;
  /** 95% bootstrap intervals (src/run/bootstrap.ts), when the evaluation asked for them. */
  ci95?: MetricIntervals;
}

/** An average over labels. */
export interface AverageMetrics extends BinaryScores {
  /** ROC-AUC of the average, or `null` when it is undefined (see `EvalReport`). */
  rocAuc: number | null;
  prAuc: number;
  /** 95% bootstrap intervals of the average (resampling rows), when asked for. */
  ci95?: MetricIntervals;
}

/**
 * Result of {@link evaluate}; plain JSON (written as `eval.json` in a run directory).
 *
 * - `micro`: every (row, label) cell counts once. Confusion counts are summed over labels and the
 *   scores are computed from the sums; ROC-AUC and PR-AUC are computed on the flattened cells
 *   (sklearn `average="micro"`).
 * - `macro`: unweighted mean of the per-label values (sklearn `average="macro"`). Unlike sklearn,
 *   which returns NaN as soon as one label's ROC-AUC is undefined, the macro ROC-AUC here is the mean
 *   over the labels where it is defined, and `null` only when it is defined for none.
 */
export interface EvalReport {
  /** Label names, in output order. */
  labels: string[];
  /** Number of rows evaluated. */
  rows: number;
  /** Thresholds used, one per label. */
  thresholds: number[];
  /** Per-label metrics keyed by label name (insertion order = `labels`). */
  perLabel: Record<string, LabelMetrics>;
  micro: AverageMetrics;
  macro: AverageMetrics;
  /** Shortcut for `macro.f1` (the default model-selection metric). */
  macroF1: number;
  /** Shortcut for `micro.f1`. */
  microF1: number;
  /** How the `ci95` intervals were made; absent when there are none (`--bootstrap 0`). */
  bootstrap?: BootstrapInfo;
}

/** Points of a ROC curve, in sklearn's order (increasing fpr/tpr, decreasing thresholds). */
export interface RocCurve {
  fpr: number[];
  tpr: number[];
  /** `thresholds[0]` is `Infinity` (the "predict nothing" point), as in sklearn >= 1.3. */
  thresholds: number[];
}

/** Points of a precision-recall curve, in sklearn's order. */
export interface PrecisionRecallCurve {
  /** Length `thresholds.length + 1`; the last element is 1. */
  precision: number[];
  /** Decreasing; length `thresholds.length + 1`; the last element is 0. */
  recall: number[];
  /** Increasing distinct scores. */
  thresholds: number[];
}

/** a / b, or 0 when b is 0 (scikit-learn's zero-division result). */
function safeDiv(a: number, b: number): number {
  return b === 0 ? 0 : a / b;
}

/** Check that `scores` and `truth` describe the same rows and that truth is 0/1. */
function checkBinaryInputs(scores: readonly number[], truth: readonly number[]): void {
  if (scores.length !== truth.length) {
    throw new Error(`scores has ${scores.length} rows but truth has ${truth.length}`);
  }
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i]))
      throw new Error(`score at row ${i} is not a finite number: ${scores[i]}`);
    if (truth[i] !== 0 && truth[i] !== 1)
      throw new Error(`truth at row ${i} must be 0 or 1, got ${truth[i]}`);
  }
}

/**
 * Confusion table of one label at `threshold` (row positive when `score >= threshold`).
 * @param scores - predicted probabilities (or any scores), one per row
 * @param truth - 0/1 truth, one per row
 */
export function confusionAt(
  scores: readonly number[],
  truth: readonly number[],
  threshold: number,
): Confusion {
  checkBinaryInputs(scores, truth);
  const c: Confusion = { tn: 0, fp: 0, fn: 0, tp: 0 };
  for (let i = 0; i < scores.length; i++) {
    const predicted = (scores[i] as number) >= threshold;
    if (truth[i] === 1) {
      if (predicted) c.tp++;
      else c.fn++;
    } else if (predicted) c.fp++;
    else c.tn++;
  }
  return c;
}

/**
 * Accuracy, precision, recall and F1 of a confusion table; a ratio whose denominator is 0 is 0.
 * F1 is computed as 2tp / (2tp + fp + fn), which equals the harmonic mean of precision and recall
 * whenever both are defined, and is 0 when tp = 0.
 */
export function scoresFromConfusion(c: Confusion): BinaryScores {
  const total = c.tn + c.fp + c.fn + c.tp;
  return {
    accuracy: safeDiv(c.tp + c.tn, total),
    precision: safeDiv(c.tp, c.tp + c.fp),
    recall: safeDiv(c.tp, c.tp + c.fn),
    f1: safeDiv(2 * c.tp, 2 * c.tp + c.fp + c.fn),
  };
}

/**
 * Cumulative counts at each distinct score, highest first (sklearn's `_binary_clf_curve`):
 * predicting positive every row with `score >= thresholds[k]` gives `tps[k]` true and `fps[k]` false
 * positives. Tied scores collapse into one threshold, so ties never create diagonal artefacts.
 */
export function countsAtThresholds(
  scores: readonly number[],
  truth: readonly number[],
): { thresholds: number[]; tps: number[]; fps: number[] } {
  checkBinaryInputs(scores, truth);
  // Stable sort of row indices by descending score.
  const order = scores
    .map((_, i) => i)
    .sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
  const thresholds: number[] = [];
  const tps: number[] = [];
  const fps: number[] = [];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k] as number;
    if (truth[i] === 1) tp++;
    else fp++;
    const next = order[k + 1];
    // Close a threshold group when the next score differs (or at the end).
    if (next === undefined || scores[next] !== scores[i]) {
      thresholds.push(scores[i] as number);
      tps.push(tp);
      fps.push(fp);
    }
  }
  return { thresholds, tps, fps };
}

/**
 * ROC curve points (sklearn `roc_curve`). With `dropIntermediate` (default true, as sklearn) points
 * collinear with their neighbours are dropped; this never changes the area. When the truth has no
 * negative (positive) row, fpr (tpr) is all NaN, as in sklearn.
 */
export function rocCurve(
  scores: readonly number[],
  truth: readonly number[],
  options: { dropIntermediate?: boolean } = {},
): RocCurve {
  let { thresholds, tps, fps } = countsAtThresholds(scores, truth);
  if ((options.dropIntermediate ?? true) && fps.length > 2) {
    // Keep the ends and every point where the second difference of fps or tps is non-zero (a corner).
    const keep: number[] = [0];
    for (let k = 1; k < fps.length - 1; k++) {
      const d2fp = (fps[k + 1] as number) - 2 * (fps[k] as number) + (fps[k - 1] as number);
      const d2tp = (tps[k + 1] as number) - 2 * (tps[k] as number) + (tps[k - 1] as number);
      if (d2fp !== 0 || d2tp !== 0) keep.push(k);
    }
    keep.push(fps.length - 1);
    thresholds = keep.map((k) => thresholds[k] as number);
    tps = keep.map((k) => tps[k] as number);
    fps = keep.map((k) => fps[k] as number);
  }
  // Start at (0, 0): the "predict nothing" point at an infinite threshold.
  tps = [0, ...tps];
  fps = [0, ...fps];
  const totalPos = tps[tps.length - 1] as number;
  const totalNeg = fps[fps.length - 1] as number;
  return {
    fpr: fps.map((v) => (totalNeg > 0 ? v / totalNeg : Number.NaN)),
    tpr: tps.map((v) => (totalPos > 0 ? v / totalPos : Number.NaN)),
    thresholds: [Number.POSITIVE_INFINITY, ...thresholds],
  };
}

/**
 * Area under the ROC curve (sklearn `roc_auc_score` for one binary label): trapezoid rule over the
 * ROC points of the distinct thresholds. Returns NaN when `truth` holds a single class (sklearn
 * warns and returns NaN), and also for an empty input.
 */
export function rocAucScore(scores: readonly number[], truth: readonly number[]): number {
  checkBinaryInputs(scores, truth);
  let pos = 0;
  for (const t of truth) pos += t;
  if (pos === 0 || pos === truth.length) return Number.NaN;
  const { fpr, tpr } = rocCurve(scores, truth, { dropIntermediate: false });
  let area = 0;
  for (let k = 1; k < fpr.length; k++) {
    area +=
      (((fpr[k] as number) - (fpr[k - 1] as number)) * ((tpr[k] as number) + (tpr[k - 1] as number))) / 2;
  }
  return area;
}

/**
 * Precision-recall curve (sklearn `precision_recall_curve`): one point per distinct score, ordered by
 * increasing threshold, plus a final (recall 0, precision 1) point without threshold. When the truth
 * has no positive row, recall is 1 at every threshold (sklearn's convention).
 */
export function precisionRecallCurve(
  scores: readonly number[],
  truth: readonly number[],
): PrecisionRecallCurve {
  const { thresholds, tps, fps } = countsAtThresholds(scores, truth);
  const totalPos = tps.length > 0 ? (tps[tps.length - 1] as number) : 0;
  const precision = tps.map((tp, k) => safeDiv(tp, tp + (fps[k] as number)));
  const recall = tps.map((tp) => (totalPos === 0 ? 1 : tp / totalPos));
  return {
    precision: [...precision.reverse(), 1],
    recall: [...recall.reverse(), 0],
    thresholds: [...thresholds].reverse(),
  };
}

/**
 * Average precision (sklearn `average_precision_score`), the PR-AUC used in reports:
 * AP = Σ_n (R_n − R_{n−1}) · P_n over thresholds from high to low, without interpolation.
 * It is 0 when the truth has no positive row (sklearn's result, after its warning) and for empty input.
 */
export function averagePrecisionScore(scores: readonly number[], truth: readonly number[]): number {
  const { precision, recall } = precisionRecallCurve(scores, truth);
  // The curve runs from low to high thresholds, so recall decreases: sum -(ΔR) · P.
  let ap = 0;
  for (let k = 0; k < recall.length - 1; k++) {
    ap -= ((recall[k + 1] as number) - (recall[k] as number)) * (precision[k] as number);
  }
  return Math.max(0, ap);
}

/**
 * The threshold that maximises F1 for one label.
 *
 * Candidates are the cuts between distinct scores: "predict positive every row with score ≥ s" for
 * each distinct score s, plus "predict nothing". All thresholds in (next lower score, s] give the
 * same predictions, so each cut stands for an interval. Among the cuts with the highest F1:
 * - if 0.5 lies in one of their intervals, 0.5 is returned (the default threshold is kept when it is
 *   already optimal);
 * - otherwise the cut's own score s (the lowest score still predicted positive) closest to 0.5 is
 *   returned, and between two equally close ones, the lower.
 * With no positive row every F1 is 0 and 0.5 is returned.
 */
export function tuneThreshold(
  scores: readonly number[],
  truth: readonly number[],
): { threshold: number; f1: number } {
  const { thresholds, tps, fps } = countsAtThresholds(scores, truth);
  const totalPos = tps.length > 0 ? (tps[tps.length - 1] as number) : 0;
  let best = { threshold: 0.5, f1: -1, distance: Number.POSITIVE_INFINITY };
  const consider = (f1: number, low: number, high: number, representative: number): void => {
    const threshold = low < 0.5 && 0.5 <= high ? 0.5 : representative;
    const distance = Math.abs(threshold - 0.5);
    // F1 values are ratios of small integers, so equal F1s compare equal exactly.
    const better =
      f1 > best.f1 ||
      (f1 === best.f1 &&
        (distance < best.distance || (distance === best.distance && threshold < best.threshold)));
    if (better) best = { threshold, f1, distance };
  };
  // "Predict nothing" (F1 = 0) covers (max score, +inf); it only matters when that holds 0.5.
  const top = thresholds[0];
  if (top === undefined) return { threshold: 0.5, f1: 0 };
  if (top < 0.5) consider(0, top, Number.POSITIVE_INFINITY, 0.5);
  for (let k = 0; k < thresholds.length; k++) {
    const tp = tps[k] as number;
    const fp = fps[k] as number;
    const f1 = safeDiv(2 * tp, 2 * tp + fp + (totalPos - tp));
    const low = k + 1 < thresholds.length ? (thresholds[k + 1] as number) : Number.NEGATIVE_INFINITY;
    consider(f1, low, thresholds[k] as number, thresholds[k] as number);
  }
  return { threshold: best.threshold, f1: best.f1 };
}

/** Column `j` of a row-major matrix. */
function column(matrix: readonly (readonly number[])[], j: number): number[] {
  return matrix.map((row) => row[j] as number);
}

/** Validate a probs/labels pair of n × L matrices and return L. */
function checkMatrices(
  probs: readonly (readonly number[])[],
  labels: readonly (readonly number[])[],
): number {
  if (probs.length !== labels.length) {
    throw new Error(`probs has ${probs.length} rows but labels has ${labels.length}`);
  }
  const width = probs[0]?.length ?? 0;
  probs.forEach((row, i) => {
    if (row.length !== width) throw new Error(`probs row ${i} has ${row.length} columns, expected ${width}`);
    const truth = labels[i] as readonly number[];
    if (truth.length !== width)
      throw new Error(`labels row ${i} has ${truth.length} columns, expected ${width}`);
  });
  return width;
}

/**
 * Per-label thresholds maximising F1 (see {@link tuneThreshold} for the tie rule), typically on the
 * validation split; stored in a run's `thresholds.json`.
 * @param probs - n × L probabilities
 * @param labels - n × L 0/1 truth
 * @param options.minPositives - a label with fewer positive rows keeps 0.5 (default 1)
 * @returns one threshold per label
 */
export function tuneThresholds(
  probs: readonly (readonly number[])[],
  labels: readonly (readonly number[])[],
  options: { minPositives?: number } = {},
): number[] {
  const width = checkMatrices(probs, labels);
  const out: number[] = [];
  for (let j = 0; j < width; j++) {
    const truth = column(labels, j);
    const positives = truth.reduce((s, v) => s + v, 0);
    out.push(
      positives < (options.minPositives ?? 1) ? 0.5 : tuneThreshold(column(probs, j), truth).threshold,
    );
  }
  return out;
}

/**
 * With fewer validation positives than this, a threshold tuned on them is noise: the trainers keep
 * 0.5 for the label (and `prepareData` warns).
 */
export const MIN_TUNING_POSITIVES = 5;

/** NaN → null, for JSON. */
function nullIfNaN(x: number): number | null {
  return Number.isNaN(x) ? null : x;
}

/**
 * Evaluate n × L probabilities against 0/1 truth: per-label confusion, accuracy, precision, recall,
 * F1, ROC-AUC and PR-AUC, plus micro and macro averages (see {@link EvalReport}).
 * @param probs - n × L probabilities
 * @param labels - n × L 0/1 truth
 * @param labelNames - L names, in column order
 * @param thresholds - L decision thresholds (default 0.5 each)
 */
export function evaluate(
  probs: readonly (readonly number[])[],
  labels: readonly (readonly number[])[],
  labelNames: readonly string[],
  thresholds?: readonly number[],
): EvalReport {
  // With no rows the width comes from the names (an empty evaluation is still a valid report).
  const columns = checkMatrices(probs, labels);
  const width = probs.length > 0 ? columns : labelNames.length;
  if (labelNames.length !== width) {
    throw new Error(`${labelNames.length} label names given for ${width} probability columns`);
  }
  if (new Set(labelNames).size !== labelNames.length) throw new Error("label names must be unique");
  const ths = thresholds ? [...thresholds] : labelNames.map(() => 0.5);
  if (ths.length !== width) throw new Error(`${ths.length} thresholds given for ${width} labels`);

  const perLabel: Record<string, LabelMetrics> = {};
  const sum: Confusion = { tn: 0, fp: 0, fn: 0, tp: 0 };
  const all: LabelMetrics[] = [];
  for (let j = 0; j < width; j++) {
    const scores = column(probs, j);
    const truth = column(labels, j);
    const threshold = ths[j] as number;
    const c = confusionAt(scores, truth, threshold);
    sum.tn += c.tn;
    sum.fp += c.fp;
    sum.fn += c.fn;
    sum.tp += c.tp;
    const m: LabelMetrics = {
      ...scoresFromConfusion(c),
      ...c,
      support: c.tp + c.fn,
      threshold,
      rocAuc: nullIfNaN(rocAucScore(scores, truth)),
      prAuc: averagePrecisionScore(scores, truth),
    };
    perLabel[labelNames[j] as string] = m;
    all.push(m);
  }

  // Micro: flatten every (row, label) cell into one binary problem.
  const flatScores = probs.flat();
  const flatTruth = labels.flat();
  const micro: AverageMetrics = {
    ...scoresFromConfusion(sum),
    rocAuc: nullIfNaN(rocAucScore(flatScores, flatTruth)),
    prAuc: averagePrecisionScore(flatScores, flatTruth),
  };

  const mean = (xs: number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
  const definedAucs = all.map((m) => m.rocAuc).filter((x): x is number => x !== null);
  const macro: AverageMetrics = {
    accuracy: mean(all.map((m) => m.accuracy)),
    precision: mean(all.map((m) => m.precision)),
    recall: mean(all.map((m) => m.recall)),
    f1: mean(all.map((m) => m.f1)),
    rocAuc: definedAucs.length > 0 ? mean(definedAucs) : null,
    prAuc: mean(all.map((m) => m.prAuc)),
  };

  return {
    labels: [...labelNames],
    rows: probs.length,
    thresholds: ths,
    perLabel,
    micro,
    macro,
    macroF1: macro.f1,
    microF1: micro.f1,
  };
}

/** Column names of the prototype's `log.csv`, in order. */
export const PROTOTYPE_COLUMNS = [
  "label",
  "accuracy",
  "precision",
  "recall",
  "f1",
  "tn",
  "fp",
  "fn",
  "tp",
] as const;

/**
 * Columns log.csv gets after the prototype's when the evaluation has bootstrap intervals: the
 * ROC-AUC and PR-AUC values, then the 95% interval of each metric (`<metric>_lo`, `<metric>_hi`).
 */
export const INTERVAL_COLUMNS = [
  "roc_auc",
  "pr_auc",
  "precision_lo",
  "precision_hi",
  "recall_lo",
  "recall_hi",
  "f1_lo",
  "f1_hi",
  "roc_auc_lo",
  "roc_auc_hi",
  "pr_auc_lo",
  "pr_auc_hi",
] as const;

/** The INTERVAL_COLUMNS cells of one label (empty where a value is undefined). */
function intervalCells(m: LabelMetrics): string[] {
  const i = m.ci95;
  const pair = (p: [number, number] | null | undefined) => (p ? [String(p[0]), String(p[1])] : ["", ""]);
  return [
    m.rocAuc === null ? "" : String(m.rocAuc),
    String(m.prAuc),
    ...pair(i?.precision),
    ...pair(i?.recall),
    ...pair(i?.f1),
    ...pair(i?.rocAuc),
    ...pair(i?.prAuc),
  ];
}

/** Quote a CSV field when RFC 4180 requires it. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/**
 * The prototype's per-label table (`label,accuracy,precision,recall,f1,tn,fp,fn,tp`).
 * - `csv`: exactly those columns, one row per label, full-precision numbers, `\n` line ends (the
 *   content of `log.csv`); when the report has bootstrap intervals, the INTERVAL_COLUMNS follow;
 * - `text`: the same table aligned for a terminal with 4 decimals, followed by micro and macro
 *   average rows (micro shows the summed counts; macro has no counts), the F1 interval when there
 *   is one, and the ROC-AUC / PR-AUC per label.
 */
export function formatPrototypeTable(report: EvalReport): { text: string; csv: string } {
  const withCi = report.labels.some((l) => report.perLabel[l]?.ci95);
  const csvLines = [(withCi ? [...PROTOTYPE_COLUMNS, ...INTERVAL_COLUMNS] : PROTOTYPE_COLUMNS).join(",")];
  for (const name of report.labels) {
    const m = report.perLabel[name] as LabelMetrics;
    const cells: unknown[] = [
      csvField(name),
      m.accuracy,
      m.precision,
      m.recall,
      m.f1,
      m.tn,
      m.fp,
      m.fn,
      m.tp,
    ];
    if (withCi) cells.push(...intervalCells(m));
    csvLines.push(cells.map(String).join(","));
  }

  const f = (x: number | null): string => (x === null ? "-" : x.toFixed(4));
  const ci = (m: { ci95?: MetricIntervals }): string[] => {
    if (!withCi) return [];
    const i = m.ci95?.f1;
    return [i ? `${i[0].toFixed(3)}–${i[1].toFixed(3)}` : "-"];
  };
  const header = [...PROTOTYPE_COLUMNS, ...(withCi ? ["f1_95%_ci"] : []), "roc_auc", "pr_auc"];
  const rows: string[][] = report.labels.map((name) => {
    const m = report.perLabel[name] as LabelMetrics;
    const counts = [m.tn, m.fp, m.fn, m.tp].map(String);
    return [
      name,
      f(m.accuracy),
      f(m.precision),
      f(m.recall),
      f(m.f1),
      ...counts,
      ...ci(m),
      f(m.rocAuc),
      f(m.prAuc),
    ];
  });
  const microCounts = report.labels.reduce(
    (acc, name) => {
      const m = report.perLabel[name] as LabelMetrics;
      return [acc[0] + m.tn, acc[1] + m.fp, acc[2] + m.fn, acc[3] + m.tp] as [number, number, number, number];
    },
    [0, 0, 0, 0] as [number, number, number, number],
  );
  const avg = (name: string, a: AverageMetrics, counts: string[]): string[] => [
    name,
    f(a.accuracy),
    f(a.precision),
    f(a.recall),
    f(a.f1),
    ...counts,
    ...ci(a),
    f(a.rocAuc),
    f(a.prAuc),
  ];
  const footer = [
    avg("micro avg", report.micro, microCounts.map(String)),
    avg("macro avg", report.macro, ["", "", "", ""]),
  ];
  // Display width: count East Asian wide characters (e.g. Japanese label names) as 2 columns.
  const width = (s: string): number => [...s].reduce((w, ch) => w + (/[\u1100-\uffff]/.test(ch) ? 2 : 1), 0);
  const all = [header, ...rows, ...footer];
  const widths = header.map((_, c) => Math.max(...all.map((r) => width(r[c] as string))));
  const pad = (r: string[]): string =>
    r
      .map((cell, c) => {
        const space = " ".repeat((widths[c] as number) - width(cell));
        return c === 0 ? cell + space : space + cell; // label left-aligned, numbers right-aligned
      })
      .join("  ")
      .trimEnd();
  const text = [pad(header), ...rows.map(pad), "", ...footer.map(pad)].join("\n");
  return { text: `${text}\n`, csv: `${csvLines.join("\n")}\n` };
}
