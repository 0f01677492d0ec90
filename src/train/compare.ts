// Paired bootstrap comparison of two classifiers scored on the same rows.
//
// Both runs are resampled with the same resamples (src/run/bootstrap.ts draws them from the
// seed and the row count only), so each resample gives a difference B − A of every metric on
// exactly the same rows. The spread of those differences is much smaller than the two separate
// intervals suggest, because the rows that are hard for A are mostly hard for B too: a paired
// interval that excludes 0 is a real difference even when the two runs' own intervals overlap.
import {
  bootstrapDraws,
  CI_METRICS,
  type CiMetric,
  type MetricDraws,
  percentileInterval,
} from "../run/bootstrap.js";
import { type AverageMetrics, evaluate, type LabelMetrics } from "../run/metrics.js";

/** One metric of a paired comparison. */
export interface PairedMetric {
  /** Full-sample values (null when undefined, e.g. ROC-AUC with one class). */
  a: number | null;
  b: number | null;
  /** b − a on the full sample. */
  diff: number | null;
  /** 95% percentile interval of b − a over the resamples. */
  ci95: [number, number] | null;
  /** Share of resamples where B is strictly better than A (bigger is better for every metric). */
  bBetter: number | null;
  /** Share of resamples where they are equal. */
  ties: number | null;
}

export type PairedMetrics = Record<CiMetric, PairedMetric>;

/** Result of {@link pairedBootstrap}. */
export interface PairedComparison {
  labels: string[];
  rows: number;
  resamples: number;
  seed: number;
  perLabel: Record<string, PairedMetrics>;
  micro: PairedMetrics;
  macro: PairedMetrics;
}

/** Scores of one run on the shared rows: n × L probabilities and its L thresholds. */
export interface ScoredRun {
  probs: readonly (readonly number[])[];
  thresholds: readonly number[];
}

function pairedMetrics(
  fullA: LabelMetrics | AverageMetrics,
  fullB: LabelMetrics | AverageMetrics,
  drawsA: MetricDraws,
  drawsB: MetricDraws,
): PairedMetrics {
  const out = {} as PairedMetrics;
  for (const m of CI_METRICS) {
    const a = fullA[m];
    const b = fullB[m];
    const da = drawsA[m];
    const db = drawsB[m];
    const diffs = new Float64Array(da.length);
    let defined = 0;
    let better = 0;
    let ties = 0;
    for (let r = 0; r < da.length; r++) {
      const d = db[r] - da[r]; // NaN when either is undefined
      diffs[r] = d;
      if (Number.isNaN(d)) continue;
      defined++;
      if (d > 0) better++;
      else if (d === 0) ties++;
    }
    out[m] = {
      a,
      b,
      diff: a === null || b === null ? null : b - a,
      ci95: percentileInterval(diffs),
      bBetter: defined > 0 ? better / defined : null,
      ties: defined > 0 ? ties / defined : null,
    };
  }
  return out;
}

/**
 * Paired bootstrap of two runs on the same rows: per label and average, each metric's difference
 * B − A with its 95% interval and the share of resamples where B beats A. Each run is judged at its
 * own thresholds. A run compared with itself gives differences of exactly 0.
 * @param truth - n × L 0/1 truth of the shared rows
 */
export function pairedBootstrap(
  a: ScoredRun,
  b: ScoredRun,
  truth: readonly (readonly number[])[],
  labelNames: readonly string[],
  options: { resamples?: number; seed?: number } = {},
): PairedComparison {
  const resamples = options.resamples ?? 1000;
  const seed = options.seed ?? 42;
  if (resamples < 1) throw new Error("a paired comparison needs at least one resample");
  if (a.probs.length !== truth.length || b.probs.length !== truth.length)
    throw new Error(
      `runs scored ${a.probs.length} and ${b.probs.length} rows for ${truth.length} truth rows`,
    );
  const opts = { resamples, seed };
  const [dA] = bootstrapDraws(a.probs, truth, labelNames, [a.thresholds], opts);
  const [dB] = bootstrapDraws(b.probs, truth, labelNames, [b.thresholds], opts);
  const fA = evaluate(a.probs, truth, labelNames, a.thresholds);
  const fB = evaluate(b.probs, truth, labelNames, b.thresholds);
  return {
    labels: [...labelNames],
    rows: truth.length,
    resamples,
    seed,
    perLabel: Object.fromEntries(
      labelNames.map((l) => [
        l,
        pairedMetrics(fA.perLabel[l], fB.perLabel[l], dA.perLabel[l], dB.perLabel[l]),
      ]),
    ),
    micro: pairedMetrics(fA.micro, fB.micro, dA.micro, dB.micro),
    macro: pairedMetrics(fA.macro, fB.macro, dA.macro, dB.macro),
  };
}
