// Chart specs of a run report: training curves, per-label evaluation charts (confusion matrices,
// precision–recall and ROC curves, score histograms) and the label rates of the data the run saw.
// Specs only; rendering goes through the shared chart module (charts.ts).

import { barChart, type LinePoint, lineChart, type VegaLiteSpec } from "../charts/charts.js";
import { ECE_BINS, expectedCalibrationError, reliabilityBins } from "../run/calibration.js";
import {
  type Confusion,
  confusionAt,
  precisionRecallCurve,
  rocCurve,
  scoresFromConfusion,
} from "../run/metrics.js";
import type { EvalRecord, StepRecord } from "./run.js";

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** Curves with more points than this are thinned (the SVG stays small; the shape does not change). */
const MAX_CURVE_POINTS = 1500;

/** Averages consecutive points into at most `max` buckets (keeps noisy loss curves readable). */
export function bucketMean<T>(
  items: readonly T[],
  max: number,
  x: (t: T) => number,
  y: (t: T) => number,
): LinePoint[] {
  if (items.length <= max) return items.map((t) => ({ x: x(t), y: y(t) }));
  const size = Math.ceil(items.length / max);
  const out: LinePoint[] = [];
  for (let i = 0; i < items.length; i += size) {
    const chunk = items.slice(i, i + size);
    const mean = (f: (t: T) => number) => chunk.reduce((s, t) => s + f(t), 0) / chunk.length;
    out.push({ x: mean(x), y: mean(y) });
  }
  return out;
}

/** Keeps every k-th point of a curve, always with the first and last one. */
function thin<T>(points: readonly T[], max = MAX_CURVE_POINTS): T[] {
  if (points.length <= max) return [...points];
  const stride = (points.length - 1) / (max - 1);
  const out: T[] = [];
  for (let k = 0; k < max; k++) out.push(points[Math.round(k * stride)] as T);
  return out;
}

/** Training and validation loss by optimizer step. */
export function lossChart(steps: readonly StepRecord[], evals: readonly EvalRecord[]): VegaLiteSpec {
  const train = bucketMean(
    steps,
    MAX_CURVE_POINTS,
    (s) => s.step,
    (s) => s.loss,
  ).map((p) => ({
    ...p,
    series: "train (training batches)",
  }));
  const valid = evals
    .filter((e) => e.loss !== undefined)
    .map((e) => ({ x: e.step, y: e.loss as number, series: "validation" }));
  return lineChart([...train, ...valid], {
    title: "Loss / 損失",
    subtitle: steps.length > MAX_CURVE_POINTS ? "training loss averaged over consecutive steps" : undefined,
    xTitle: "optimizer step",
    yTitle: "loss",
    points: train.length + valid.length <= 60,
  });
}

/** Learning rate by optimizer step (the schedule the run used). */
export function learningRateChart(steps: readonly StepRecord[]): VegaLiteSpec {
  return lineChart(
    bucketMean(
      steps,
      MAX_CURVE_POINTS,
      (s) => s.step,
      (s) => s.lr,
    ),
    { title: "Learning rate / 学習率", xTitle: "optimizer step", yTitle: "learning rate" },
  );
}

/** Per-label F1 (and macro F1) on the validation split at each evaluation. */
export function f1ByEpochChart(evals: readonly EvalRecord[], labels: readonly string[]): VegaLiteSpec {
  // One evaluation per epoch: plot by epoch. Several per epoch (evalEvery = N steps): by step.
  const byEpoch = new Set(evals.map((e) => e.epoch)).size === evals.length;
  const x = (e: EvalRecord) => (byEpoch ? e.epoch : e.step);
  const points: LinePoint[] = [];
  for (const e of evals) {
    for (const l of labels) {
      const m = e.perLabel[l];
      if (m) points.push({ x: x(e), y: m.f1, series: l });
    }
    if (e.macroF1 !== undefined) points.push({ x: x(e), y: e.macroF1, series: "macro F1" });
  }
  const spec = lineChart(points, {
    title: byEpoch ? "F1 by epoch / エポックごとの F1" : "F1 by step / ステップごとの F1",
    subtitle: "validation split, threshold 0.5",
    xTitle: byEpoch ? "epoch" : "optimizer step",
    yTitle: "F1",
    points: true,
  }) as unknown as Record<string, unknown>;
  // F1 lives in [0, 1]; a fixed axis makes runs comparable at a glance.
  const encoding = spec.encoding as Record<string, Record<string, unknown>>;
  encoding.y = { ...encoding.y, scale: { domain: [0, 1] } };
  if (byEpoch) encoding.x = { ...encoding.x, axis: { tickMinStep: 1, format: "d" } };
  return spec as unknown as VegaLiteSpec;
}

export interface LabelRateSeries {
  name: string;
  rates: Record<string, number>;
}

/** Positive rate per label, one bar per data set (splits, each epoch's re-sampled set). */
export function labelRatesChart(series: readonly LabelRateSeries[], labels: readonly string[]): VegaLiteSpec {
  const data = series.flatMap((s) =>
    labels
      .filter((l) => s.rates[l] !== undefined)
      .map((l) => ({ category: l, value: s.rates[l] as number, series: s.name })),
  );
  return barChart(data, {
    title: "Label rates of the data / データのラベル比率",
    subtitle: "share of rows where the label is positive",
    percent: true,
    showValues: series.length <= 4,
  });
}

/** The scores and 0/1 truth of one label over the evaluation rows. */
export interface LabelScores {
  label: string;
  scores: number[];
  truth: number[];
  /** The tuned threshold (the one `predict` uses). */
  threshold: number;
}

function fmt(x: number, digits = 3): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "–";
}

/** Confusion matrices at 0.5 and at the tuned threshold, side by side. */
export function confusionChart(s: LabelScores): VegaLiteSpec {
  const panels: { name: string; c: Confusion }[] = [
    { name: "threshold 0.5", c: confusionAt(s.scores, s.truth, 0.5) },
    { name: `tuned threshold ${fmt(s.threshold)}`, c: confusionAt(s.scores, s.truth, s.threshold) },
  ];
  const cells = panels.flatMap(({ name, c }) => {
    const f1 = scoresFromConfusion(c).f1;
    const panel = `${name} (F1 ${fmt(f1)})`;
    return [
      { panel, truth: "negative", predicted: "negative", value: c.tn, kind: "TN" },
      { panel, truth: "negative", predicted: "positive", value: c.fp, kind: "FP" },
      { panel, truth: "positive", predicted: "negative", value: c.fn, kind: "FN" },
      { panel, truth: "positive", predicted: "positive", value: c.tp, kind: "TP" },
    ].map((cell) => ({ ...cell, text: `${cell.kind} ${cell.value}` }));
  });
  const max = Math.max(1, ...cells.map((c) => c.value));
  const order = ["negative", "positive"];
  return {
    $schema: SCHEMA,
    title: {
      text: `Confusion matrix / 混同行列 — ${s.label}`,
      subtitle: `${s.scores.length} evaluation rows`,
    },
    data: { values: cells },
    facet: { column: { field: "panel", type: "nominal", title: null, sort: cells.map((c) => c.panel) } },
    spec: {
      width: 180,
      height: 120,
      encoding: {
        x: { field: "predicted", type: "nominal", sort: order, title: "predicted", axis: { labelAngle: 0 } },
        y: { field: "truth", type: "nominal", sort: [...order].reverse(), title: "truth" },
      },
      layer: [
        {
          mark: { type: "rect", tooltip: true },
          encoding: {
            color: {
              field: "value",
              type: "quantitative",
              title: "rows",
              scale: { scheme: "blues", domain: [0, max] },
            },
          },
        },
        {
          mark: { type: "text", fontSize: 13 },
          encoding: {
            text: { field: "text", type: "nominal" },
            color: { condition: { test: `datum.value > ${max * 0.6}`, value: "white" }, value: "black" },
          },
        },
      ],
    },
  } as VegaLiteSpec;
}

interface Marker {
  name: string;
  x: number;
  y: number;
}

/** The 0.5 and tuned-threshold points drawn on a curve. */
function thresholdMarkers(s: LabelScores, point: (c: Confusion) => { x: number; y: number }): Marker[] {
  const markers: Marker[] = [{ name: "threshold 0.5", ...point(confusionAt(s.scores, s.truth, 0.5)) }];
  if (s.threshold !== 0.5) {
    markers.push({
      name: `tuned threshold ${fmt(s.threshold)}`,
      ...point(confusionAt(s.scores, s.truth, s.threshold)),
    });
  }
  return markers;
}

function markerLayer(markers: Marker[]): unknown {
  return {
    data: { values: markers },
    mark: { type: "point", filled: true, size: 110, tooltip: true },
    encoding: {
      x: { field: "x", type: "quantitative" },
      y: { field: "y", type: "quantitative" },
      shape: { field: "name", type: "nominal", title: null, legend: { orient: "bottom" } },
      color: {
        field: "name",
        type: "nominal",
        title: null,
        scale: { range: ["#555555", "#d62728"] },
        legend: { orient: "bottom" },
      },
    },
  };
}

/** Precision–recall curve with the 0.5 and tuned thresholds marked; the dashed line is the positive rate. */
export function precisionRecallChart(s: LabelScores, averagePrecision: number): VegaLiteSpec {
  const curve = precisionRecallCurve(s.scores, s.truth);
  const points = thin(curve.recall.map((r, k) => ({ x: r, y: curve.precision[k] as number, k })));
  const positives = s.truth.reduce((a, b) => a + b, 0);
  const base = s.truth.length > 0 ? positives / s.truth.length : 0;
  const markers = thresholdMarkers(s, (c) => {
    const m = scoresFromConfusion(c);
    return { x: m.recall, y: m.precision };
  });
  return {
    $schema: SCHEMA,
    title: {
      text: `Precision–recall / 適合率–再現率 — ${s.label}`,
      subtitle: `PR-AUC ${fmt(averagePrecision)} · dashed: positive rate ${fmt(base)}`,
    },
    width: 300,
    height: 260,
    layer: [
      {
        data: { values: points },
        mark: { type: "line", interpolate: "step-after", clip: true },
        encoding: {
          x: { field: "x", type: "quantitative", title: "recall", scale: { domain: [0, 1] } },
          y: { field: "y", type: "quantitative", title: "precision", scale: { domain: [0, 1] } },
          order: { field: "k", type: "quantitative" },
        },
      },
      {
        data: { values: [{ y: base }] },
        mark: { type: "rule", strokeDash: [4, 4], color: "#888" },
        encoding: { y: { field: "y", type: "quantitative" } },
      },
      markerLayer(markers),
    ],
  } as VegaLiteSpec;
}

/** ROC curve with the 0.5 and tuned thresholds marked; the dashed diagonal is a random scorer. */
export function rocChart(s: LabelScores, auc: number | null): VegaLiteSpec {
  const curve = rocCurve(s.scores, s.truth);
  const points = thin(curve.fpr.map((f, k) => ({ x: f, y: curve.tpr[k] as number, k }))).filter(
    (p) => Number.isFinite(p.x) && Number.isFinite(p.y),
  );
  const markers = thresholdMarkers(s, (c) => ({
    x: c.fp + c.tn > 0 ? c.fp / (c.fp + c.tn) : 0,
    y: c.tp + c.fn > 0 ? c.tp / (c.tp + c.fn) : 0,
  }));
  return {
    $schema: SCHEMA,
    title: {
      text: `ROC curve / ROC 曲線 — ${s.label}`,
      subtitle: auc === null ? "ROC-AUC undefined: one class only" : `ROC-AUC ${fmt(auc)}`,
    },
    width: 300,
    height: 260,
    layer: [
      {
        data: {
          values: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
        },
        mark: { type: "line", strokeDash: [4, 4], color: "#888" },
        encoding: {
          x: { field: "x", type: "quantitative", title: "false positive rate", scale: { domain: [0, 1] } },
          y: { field: "y", type: "quantitative", title: "true positive rate", scale: { domain: [0, 1] } },
        },
      },
      {
        data: { values: points },
        mark: { type: "line", clip: true },
        encoding: {
          x: { field: "x", type: "quantitative" },
          y: { field: "y", type: "quantitative" },
          order: { field: "k", type: "quantitative" },
        },
      },
      markerLayer(markers),
    ],
  } as VegaLiteSpec;
}

/** Histograms of the predicted probability for truly positive and truly negative rows. */
export function scoreHistogramChart(s: LabelScores, bins = 20): VegaLiteSpec {
  const groups = [
    { name: "positive", want: 1 },
    { name: "negative", want: 0 },
  ];
  const data = groups.flatMap(({ name, want }) => {
    const scores = s.scores.filter((_, i) => s.truth[i] === want);
    const counts = new Array<number>(bins).fill(0);
    for (const p of scores) counts[Math.min(bins - 1, Math.floor(p * bins))]++;
    const series = `${name} rows (${scores.length})`;
    // Shares within each class, so a rare class stays visible next to a common one.
    return counts.map((n, b) => ({
      series,
      lo: b / bins,
      hi: (b + 1) / bins,
      share: scores.length > 0 ? n / scores.length : 0,
      rows: n,
    }));
  });
  const seriesNames = [...new Set(data.map((d) => d.series))];
  // 0.5 dashed grey; the tuned threshold solid red (when it differs).
  const thresholdLayers: unknown[] = [
    {
      data: { values: [{ x: 0.5 }] },
      mark: { type: "rule", strokeDash: [4, 3], color: "#555" },
      encoding: { x: { field: "x", type: "quantitative" } },
    },
  ];
  if (s.threshold !== 0.5) {
    thresholdLayers.push({
      data: { values: [{ x: s.threshold }] },
      mark: { type: "rule", strokeWidth: 2, color: "#d62728" },
      encoding: { x: { field: "x", type: "quantitative" } },
    });
  }
  return {
    $schema: SCHEMA,
    title: {
      text: `Scores / 予測確率の分布 — ${s.label}`,
      subtitle: `share of each class's rows per bin · dashed 0.5 · red: tuned ${fmt(s.threshold)}`,
    },
    width: 360,
    height: 220,
    layer: [
      {
        data: { values: data },
        mark: { type: "bar", opacity: 0.55, tooltip: true },
        encoding: {
          x: {
            field: "lo",
            type: "quantitative",
            title: `predicted P(${s.label})`,
            scale: { domain: [0, 1] },
          },
          x2: { field: "hi" },
          y: {
            field: "share",
            type: "quantitative",
            title: "share of rows",
            stack: null,
            axis: { format: ".0%" },
          },
          y2: { datum: 0 },
          color: {
            field: "series",
            type: "nominal",
            title: null,
            scale: { domain: seriesNames, range: ["#e45756", "#4c78a8"] },
            legend: { orient: "bottom" },
          },
        },
      },
      ...thresholdLayers,
    ],
  } as VegaLiteSpec;
}

/**
 * Reliability diagram: per equal-width probability bin (ECE_BINS), the share of positive rows
 * against the mean predicted probability; a calibrated model lies on the diagonal. Point size is
 * the bin's row count; the subtitle gives the expected calibration error.
 */
export function reliabilityChart(s: LabelScores): VegaLiteSpec {
  const bins = reliabilityBins(s.scores, s.truth, ECE_BINS).filter((b) => b.count > 0);
  const ece = expectedCalibrationError(s.scores, s.truth, ECE_BINS);
  const axis = { type: "quantitative", scale: { domain: [0, 1] } };
  return {
    $schema: SCHEMA,
    title: {
      text: `Reliability / 信頼性図 — ${s.label}`,
      subtitle: `ECE ${fmt(ece)} (${ECE_BINS} equal-width bins)`,
    },
    width: 300,
    height: 260,
    layer: [
      {
        data: {
          values: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
        },
        mark: { type: "line", strokeDash: [4, 4], color: "#888" },
        encoding: {
          x: { field: "x", ...axis, title: "mean predicted probability" },
          y: { field: "y", ...axis, title: "share of positive rows" },
        },
      },
      {
        data: { values: bins.map((b) => ({ x: b.meanProb, y: b.positiveRate, rows: b.count })) },
        mark: { type: "line", point: false },
        encoding: { x: { field: "x", ...axis }, y: { field: "y", ...axis } },
      },
      {
        data: { values: bins.map((b) => ({ x: b.meanProb, y: b.positiveRate, rows: b.count })) },
        mark: { type: "circle", opacity: 0.8 },
        encoding: {
          x: { field: "x", ...axis },
          y: { field: "y", ...axis },
          size: { field: "rows", type: "quantitative", title: "rows" },
        },
      },
    ],
  } as VegaLiteSpec;
}
