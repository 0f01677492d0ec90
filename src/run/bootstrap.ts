// Bootstrap confidence intervals for the evaluation metrics (src/run/metrics.ts).
//
// A resample draws n rows with replacement; a row keeps all its labels. Instead of copying rows, a
// resample is a vector of counts `w[i]` (how often row i was drawn), and every metric is computed
// as a weighted metric over the original rows. Each label's rows are sorted by score once; one
// pass over that order then gives, for any resample, the confusion tables at the thresholds (the
// rows predicted positive are a prefix of the order), ROC-AUC (Mann–Whitney with ties counted
// half, which is exactly the trapezoid area sklearn computes) and average precision (one term per
// distinct score). So a resample costs O(rows × labels) with no sorting, and the numbers equal
// what `evaluate` gives on the resampled rows.
//
// Intervals are percentile intervals (numpy's default linear interpolation between order
// statistics). A resample where a metric is undefined (ROC-AUC with a single class) is left out of
// that metric's distribution; when every resample leaves it out the interval is `null`.
import { createRng } from "../data/random.js";
import type { AverageMetrics, EvalReport, LabelMetrics } from "./metrics.js";

/** The metrics that get intervals, with the names used in eval.json. */
export const CI_METRICS = ["precision", "recall", "f1", "rocAuc", "prAuc"] as const;
export type CiMetric = (typeof CI_METRICS)[number];

/** A 95% (or other level) interval per metric; `null` when the metric is never defined. */
export type MetricIntervals = Record<CiMetric, [number, number] | null>;

/** One value per resample for each metric. */
export type MetricDraws = Record<CiMetric, Float64Array>;

/** Draws of every label and both averages, for one set of thresholds. */
export interface BootstrapDraws {
  perLabel: Record<string, MetricDraws>;
  micro: MetricDraws;
  macro: MetricDraws;
}

export interface BootstrapOptions {
  /** Number of resamples (default 1000). */
  resamples?: number;
  /** Seed of the resampling (default 42). The same seed and row count give the same resamples. */
  seed?: number;
}

/** Intervals of every label and both averages. */
export interface BootstrapIntervals {
  perLabel: Record<string, MetricIntervals>;
  micro: MetricIntervals;
  macro: MetricIntervals;
}

/** How the intervals of an evaluation were made (stored in eval.json as `bootstrap`). */
export interface BootstrapInfo {
  resamples: number;
  seed: number;
  level: number;
  method: "percentile";
}

/** Scores of one binary problem sorted once: row of each position, its truth, and tie-group ends. */
interface SortedColumn {
  row: Int32Array;
  truth: Uint8Array;
  /** 1 at the last position of a run of equal scores. */
  groupEnd: Uint8Array;
  /** Per threshold set: how many positions have score ≥ threshold (always a group boundary). */
  cuts: Int32Array;
}

function sortColumn(
  scores: Float64Array,
  truth: Uint8Array,
  rowOf: Int32Array,
  thresholds: readonly number[],
): SortedColumn {
  const m = scores.length;
  const order = Array.from({ length: m }, (_, k) => k).sort((a, b) => scores[b] - scores[a] || a - b);
  const row = new Int32Array(m);
  const t = new Uint8Array(m);
  const groupEnd = new Uint8Array(m);
  for (let k = 0; k < m; k++) {
    const i = order[k];
    row[k] = rowOf[i];
    t[k] = truth[i];
    groupEnd[k] = k + 1 === m || scores[order[k + 1]] !== scores[i] ? 1 : 0;
  }
  const cuts = Int32Array.from(thresholds, (th) => {
    let c = 0;
    while (c < m && scores[order[c]] >= th) c++;
    return c;
  });
  return { row, truth: t, groupEnd, cuts };
}

/** Weighted counts of one resample over a sorted column. */
interface ColumnStats {
  /** tp and fp at each threshold set's cut. */
  tp: Float64Array;
  fp: Float64Array;
  pos: number;
  neg: number;
  rocAuc: number;
  prAuc: number;
}

/** One pass over a sorted column with row weights `w` (see the file comment). */
function passColumn(col: SortedColumn, w: Int32Array, out: ColumnStats): void {
  const { row, truth, groupEnd, cuts } = col;
  let tp = 0;
  let fp = 0;
  let gtp = 0;
  let gfp = 0;
  let pairs = 0; // Σ over negatives of the positives ranked above them (ties count half)
  let ap = 0; // Σ over groups of (positives in group) × precision at the group's cut
  for (let s = 0; s < cuts.length; s++) if (cuts[s] === 0) out.tp[s] = out.fp[s] = 0;
  const m = row.length;
  for (let k = 0; k < m; k++) {
    const wk = w[row[k]];
    if (truth[k] === 1) gtp += wk;
    else gfp += wk;
    if (groupEnd[k] === 1) {
      pairs += gfp * (tp + gtp / 2);
      tp += gtp;
      fp += gfp;
      if (gtp > 0) ap += (gtp * tp) / (tp + fp);
      gtp = 0;
      gfp = 0;
      for (let s = 0; s < cuts.length; s++) {
        if (cuts[s] === k + 1) {
          out.tp[s] = tp;
          out.fp[s] = fp;
        }
      }
    }
  }
  out.pos = tp;
  out.neg = fp;
  out.rocAuc = tp > 0 && fp > 0 ? pairs / (tp * fp) : Number.NaN;
  out.prAuc = tp > 0 ? Math.max(0, ap / tp) : 0;
}

function emptyDraws(b: number): MetricDraws {
  return {
    precision: new Float64Array(b),
    recall: new Float64Array(b),
    f1: new Float64Array(b),
    rocAuc: new Float64Array(b),
    prAuc: new Float64Array(b),
  };
}

const ratio = (a: number, b: number): number => (b === 0 ? 0 : a / b);

/** Precision, recall and F1 of one resample into `d` at index r. */
function putScores(d: MetricDraws, r: number, tp: number, fp: number, fn: number): void {
  d.precision[r] = ratio(tp, tp + fp);
  d.recall[r] = ratio(tp, tp + fn);
  d.f1[r] = ratio(2 * tp, 2 * tp + fp + fn);
}

/**
 * The resamples of n rows as counts: `w[i]` is how often row i was drawn (n draws with
 * replacement). The same array is refilled for each resample. Same n, count and seed → same resamples.
 */
export function* resampleCounts(n: number, resamples: number, seed: number): Generator<Int32Array> {
  const rng = createRng(seed);
  const w = new Int32Array(n);
  for (let r = 0; r < resamples; r++) {
    w.fill(0);
    for (let k = 0; k < n; k++) w[Math.floor(rng.next() * n)]++;
    yield w;
  }
}

/**
 * Bootstrap draws of every metric, for one or more sets of thresholds evaluated on the same
 * resamples (ROC-AUC and PR-AUC do not depend on thresholds and are shared between the sets).
 * Two calls with the same seed and row count use the same resamples: that makes a paired
 * comparison of two runs on the same rows (see src/train/compare.ts).
 * @param probs - n × L probabilities
 * @param labels - n × L 0/1 truth
 * @param labelNames - L names
 * @param thresholdSets - one array of L thresholds per evaluation (e.g. [0.5…] and the tuned ones)
 */
export function bootstrapDraws(
  probs: readonly (readonly number[])[],
  labels: readonly (readonly number[])[],
  labelNames: readonly string[],
  thresholdSets: readonly (readonly number[])[],
  options: BootstrapOptions = {},
): BootstrapDraws[] {
  const B = options.resamples ?? 1000;
  if (!Number.isInteger(B) || B < 1) throw new Error(`resamples must be a positive integer, got ${B}`);
  const n = probs.length;
  const L = labelNames.length;
  if (labels.length !== n) throw new Error(`probs has ${n} rows but labels has ${labels.length}`);
  for (const t of thresholdSets)
    if (t.length !== L) throw new Error(`${t.length} thresholds given for ${L} labels`);

  // Sort each label's column, and all cells together for the micro average, once.
  const columns: SortedColumn[] = [];
  const identity = Int32Array.from({ length: n }, (_, i) => i);
  for (let j = 0; j < L; j++) {
    const s = Float64Array.from(probs, (row) => row[j] as number);
    const t = Uint8Array.from(labels, (row) => row[j] as number);
    columns.push(
      sortColumn(
        s,
        t,
        identity,
        thresholdSets.map((ts) => ts[j] as number),
      ),
    );
  }
  const flat = sortColumn(
    Float64Array.from(probs.flat()),
    Uint8Array.from(labels.flat()),
    Int32Array.from({ length: n * L }, (_, c) => Math.floor(c / L)),
    [],
  );

  const sets = thresholdSets.map(() => ({
    perLabel: Object.fromEntries(labelNames.map((l) => [l, emptyDraws(B)])) as Record<string, MetricDraws>,
    micro: emptyDraws(B),
    macro: emptyDraws(B),
  }));
  const S = thresholdSets.length;
  const stats: ColumnStats = {
    tp: new Float64Array(S),
    fp: new Float64Array(S),
    pos: 0,
    neg: 0,
    rocAuc: 0,
    prAuc: 0,
  };
  const microStats: ColumnStats = { ...stats, tp: new Float64Array(0), fp: new Float64Array(0) };
  const sums = Array.from({ length: S }, () => new Float64Array(3)); // micro tp, fp, fn
  let r = 0;
  for (const w of resampleCounts(n, B, options.seed ?? 42)) {
    for (const s of sums) s.fill(0);
    let aucSum = 0;
    let aucCount = 0;
    let apSum = 0;
    for (let j = 0; j < L; j++) {
      passColumn(columns[j], w, stats);
      const name = labelNames[j] as string;
      if (!Number.isNaN(stats.rocAuc)) {
        aucSum += stats.rocAuc;
        aucCount++;
      }
      apSum += stats.prAuc;
      for (let s = 0; s < S; s++) {
        const d = sets[s].perLabel[name];
        const tp = stats.tp[s];
        const fp = stats.fp[s];
        const fn = stats.pos - tp;
        putScores(d, r, tp, fp, fn);
        d.rocAuc[r] = stats.rocAuc;
        d.prAuc[r] = stats.prAuc;
        sums[s][0] += tp;
        sums[s][1] += fp;
        sums[s][2] += fn;
      }
    }
    passColumn(flat, w, microStats);
    for (let s = 0; s < S; s++) {
      const set = sets[s];
      putScores(set.micro, r, sums[s][0], sums[s][1], sums[s][2]);
      set.micro.rocAuc[r] = microStats.rocAuc;
      set.micro.prAuc[r] = microStats.prAuc;
      // Macro: the mean of the per-label values of this resample (ROC-AUC over defined labels).
      for (const metric of ["precision", "recall", "f1"] as const) {
        let sum = 0;
        for (const name of labelNames) sum += set.perLabel[name][metric][r];
        set.macro[metric][r] = L === 0 ? 0 : sum / L;
      }
      set.macro.rocAuc[r] = aucCount > 0 ? aucSum / aucCount : Number.NaN;
      set.macro.prAuc[r] = L === 0 ? 0 : apSum / L;
    }
    r++;
  }
  return sets;
}

/**
 * Percentile `q` (0–100) of the finite values of `xs`, with numpy's default linear interpolation;
 * NaN when there is none.
 */
export function percentile(xs: ArrayLike<number>, q: number): number {
  const v = Float64Array.from(Array.prototype.filter.call(xs, (x: number) => !Number.isNaN(x)) as number[]);
  if (v.length === 0) return Number.NaN;
  v.sort();
  const pos = (q / 100) * (v.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, v.length - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

/** The central `level` percentile interval of draws, or null when none is defined. */
export function percentileInterval(xs: ArrayLike<number>, level = 0.95): [number, number] | null {
  const tail = ((1 - level) / 2) * 100;
  const lo = percentile(xs, tail);
  if (Number.isNaN(lo)) return null;
  return [lo, percentile(xs, 100 - tail)];
}

function intervalsOf(d: MetricDraws, level: number): MetricIntervals {
  return Object.fromEntries(CI_METRICS.map((m) => [m, percentileInterval(d[m], level)])) as MetricIntervals;
}

/** Percentile intervals of every label and average. */
export function intervalsFromDraws(draws: BootstrapDraws, level = 0.95): BootstrapIntervals {
  return {
    perLabel: Object.fromEntries(Object.entries(draws.perLabel).map(([l, d]) => [l, intervalsOf(d, level)])),
    micro: intervalsOf(draws.micro, level),
    macro: intervalsOf(draws.macro, level),
  };
}

/** A copy of `report` with `ci95` on each label and average and `bootstrap` describing how. */
export function withIntervals(
  report: EvalReport,
  intervals: BootstrapIntervals,
  info: BootstrapInfo,
): EvalReport {
  const perLabel: Record<string, LabelMetrics> = {};
  for (const l of report.labels) perLabel[l] = { ...report.perLabel[l], ci95: intervals.perLabel[l] };
  const avg = (a: AverageMetrics, ci: MetricIntervals): AverageMetrics => ({ ...a, ci95: ci });
  return {
    ...report,
    perLabel,
    micro: avg(report.micro, intervals.micro),
    macro: avg(report.macro, intervals.macro),
    bootstrap: info,
  };
}

/**
 * Adds 95% bootstrap intervals to evaluations of the same rows at different thresholds (e.g. the
 * reports at 0.5 and at the tuned thresholds), all from one set of resamples. With
 * `resamples: 0` the reports are returned unchanged.
 */
export function addBootstrapIntervals(
  reports: readonly EvalReport[],
  probs: readonly (readonly number[])[],
  labels: readonly (readonly number[])[],
  options: BootstrapOptions = {},
): EvalReport[] {
  const resamples = options.resamples ?? 1000;
  if (resamples === 0 || reports.length === 0) return [...reports];
  const seed = options.seed ?? 42;
  const names = reports[0].labels;
  const draws = bootstrapDraws(
    probs,
    labels,
    names,
    reports.map((r) => r.thresholds),
    { resamples, seed },
  );
  const info: BootstrapInfo = { resamples, seed, level: 0.95, method: "percentile" };
  return reports.map((r, s) => withIntervals(r, intervalsFromDraws(draws[s]), info));
}
