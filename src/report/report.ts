// `toxlora report`: one self-contained HTML page per run (inline SVG charts and CSS, no scripts, no
// network), plus every chart as SVG and PNG in `<run>/imgs/`; and a comparison page for several runs.
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { basename, isAbsolute, join, relative, resolve, sep } from "node:path";
import { barChart, type RenderOptions, renderChart, type VegaLiteSpec } from "../charts/charts.js";
import { loadDataset } from "../data/load.js";
import { schemaFromOptions } from "../data/schema.js";
import { type Html, html, inlineSvg, num, page, pct, raw, table } from "../html/html.js";
import { writeFileAtomic } from "../io/atomic.js";
import { ECE_BINS, expectedCalibrationError, readCalibration } from "../run/calibration.js";
import { degenerateLabels, warningsOf } from "../run/label-checks.js";
import { type AverageMetrics, type EvalReport, evaluate, type LabelMetrics } from "../run/metrics.js";
import { pathsRelativeToPage, pathsRelativeToRun } from "../run/paths.js";
import { RUN_FILES } from "../run/types.js";
import { VERSION } from "../version.js";
import { COMPARISON_HEADER, compareRuns, comparisonRows } from "./compare-runs.js";
import {
  EXPLAIN_BY_DEFAULT_MAX_PARAMS,
  EXPLAINED_ERRORS_CSS,
  type ExplainedErrors,
  explainErrors,
  explainedErrorsHtml,
} from "./explain-errors.js";
import { type EvalPrediction, type RunData, readRun } from "./run.js";
import {
  confusionChart,
  f1ByEpochChart,
  type LabelRateSeries,
  type LabelScores,
  labelRatesChart,
  learningRateChart,
  lossChart,
  precisionRecallChart,
  reliabilityChart,
  rocChart,
  scoreHistogramChart,
} from "./run-charts.js";

export interface ReportOptions extends RenderOptions {
  /** HTML file to write (default `<run>/report.html`). */
  out?: string;
  /** Rows per label in the worst-errors table (default 10). */
  worstErrors?: number;
  /**
   * Worst false positives and false negatives per label shown with their token attributions, each
   * (0 turns them off). Needs the run's model, loaded only then. Default: 3 when the base model has
   * at most `explainMaxParams` parameters, else none (with a note saying how to ask).
   */
  explainErrors?: number;
  /** Largest base model explained when explainErrors is not given (default 30 M parameters). */
  explainMaxParams?: number;
  /** Integrated-gradients steps of those attributions (default 32). */
  explainSteps?: number;
  /** CPU threads for the model when explaining. */
  threads?: number;
  /** Called with a short message before each slow step (the CLI prints them on stderr). */
  onProgress?: (message: string) => void;
  /** Keep absolute local paths (run, model, data files); by default they are relative to the run. */
  showPaths?: boolean;
}

/** A chart of the report: file base name in imgs/, spec, and a one-line explanation. */
interface ChartEntry {
  name: string;
  spec: VegaLiteSpec;
  caption: string;
}

/** File-name-safe form of a label (letters of any script, digits, `_`, `-`). */
export function labelSlug(label: string, index: number): string {
  const slug = label
    .normalize("NFKC")
    .replace(/[^\p{L}\p{N}_-]+/gu, "_")
    .replace(/^_+|_+$/g, "");
  return slug === "" ? `label${index + 1}` : slug;
}

/** Unique slugs for all labels (a suffix is added when two labels map to the same slug). */
function labelSlugs(labels: readonly string[]): string[] {
  const seen = new Set<string>();
  return labels.map((l, j) => {
    let s = labelSlug(l, j);
    if (seen.has(s)) s = `${s}-${j + 1}`;
    seen.add(s);
    return s;
  });
}

/** Scores and truth of each label over the evaluation predictions. */
export function labelScores(run: RunData): LabelScores[] {
  return run.labels.map((label, j) => ({
    label,
    scores: run.predictions.map((p) => p.probs[label] as number),
    truth: run.predictions.map((p) => p.truth[label] as number),
    threshold: run.thresholds[j] as number,
  }));
}

/** The run's final evaluation: eval.json, or computed from the eval predictions when it is missing. */
export function finalEvaluation(run: RunData): EvalReport | null {
  if (run.eval) return run.eval;
  if (run.predictions.length === 0) return null;
  return evaluateAt(run, run.thresholds);
}

/**
 * The warnings of labels whose decisions mean nothing: eval.json's `degenerate`, or, for a run
 * written before it existed, the same check on the evaluation predictions (test split).
 */
export function degenerateWarnings(run: RunData): string[] {
  const saved = run.evalFile?.degenerate;
  if (isRecord(saved)) return warningsOf(saved);
  if (run.predictions.length === 0) return [];
  const probs = run.predictions.map((p) => run.labels.map((l) => p.probs[l] as number));
  const truth = run.predictions.map((p) => run.labels.map((l) => p.truth[l] as number));
  const found = degenerateLabels(run.labels, run.thresholds, [{ name: "test", scores: probs, probs, truth }]);
  return Object.values(found).map((d) => d.warning);
}

function evaluateAt(run: RunData, thresholds: readonly number[]): EvalReport {
  const probs = run.predictions.map((p) => run.labels.map((l) => p.probs[l] as number));
  const truth = run.predictions.map((p) => run.labels.map((l) => p.truth[l] as number));
  return evaluate(probs, truth, run.labels, thresholds);
}

/**
 * Training time in seconds, from the trainer's records: the largest `elapsedS` (or `trainSeconds`
 * / `seconds`) seen in metrics.jsonl or eval.json. Null when the run does not record it.
 */
export function trainingSeconds(run: RunData): number | null {
  let best: number | null = null;
  const consider = (v: unknown) => {
    if (typeof v === "number" && Number.isFinite(v) && v >= 0) best = Math.max(best ?? 0, v);
  };
  for (const r of [...run.steps, ...run.evals]) consider(r.elapsedS);
  for (const r of run.otherRecords) {
    consider(r.elapsedS);
    consider(r.trainSeconds);
    consider(r.seconds);
  }
  if (run.evalFile) consider(run.evalFile.trainSeconds);
  return best;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export interface SplitRates {
  /** One entry per data set, in display order, with its row count. */
  series: (LabelRateSeries & { rows: number })[];
  /** Why a split's rates could not be shown. */
  notes: string[];
}

/**
 * Label rates of the data the run saw: train/valid/test (from the manifest's own rates when it has
 * them, else by re-reading the data files it lists, checked against their sha256), then each
 * epoch's re-sampled set (metrics.jsonl "epoch" records).
 */
export async function dataLabelRates(run: RunData): Promise<SplitRates> {
  const notes: string[] = [];
  const series: SplitRates["series"] = [];
  const splitNames = ["train", "valid", "test"] as const;
  const manifest = run.manifest ?? {};
  const splits = isRecord(manifest.splits) ? manifest.splits : {};

  const given = isRecord(manifest.labelRates) ? manifest.labelRates : null;
  if (given) {
    for (const name of splitNames) {
      const rates = given[name];
      const ids = splits[name];
      if (isRecord(rates)) {
        series.push({
          name,
          rates: rates as Record<string, number>,
          rows: Array.isArray(ids) ? ids.length : Number.NaN,
        });
      }
    }
  } else if (Object.values(splits).some(Array.isArray)) {
    try {
      const truth = await truthById(run);
      for (const name of splitNames) {
        const ids = splits[name];
        if (!Array.isArray(ids) || ids.length === 0) continue;
        const rows = ids.map((id) => truth.get(String(id))).filter((r): r is number[] => r !== undefined);
        if (rows.length < ids.length)
          notes.push(`${name}: ${ids.length - rows.length} ids not found in the data files`);
        series.push({ name, rates: ratesOf(rows, run.labels), rows: rows.length });
      }
    } catch (err) {
      notes.push(`split label rates unavailable: ${(err as Error).message}`);
    }
  }
  if (!series.some((s) => s.name === "test") && run.predictions.length > 0) {
    const rows = run.predictions.map((p) => run.labels.map((l) => p.truth[l] as number));
    series.push({ name: "test (evaluation rows)", rates: ratesOf(rows, run.labels), rows: rows.length });
  }
  for (const e of run.epochs) {
    series.push({
      name: `epoch ${e.epoch}${run.trainConfig.resampleEachEpoch ? " (re-sampled)" : ""}`,
      rates: e.labelRates,
      rows: e.ids?.length ?? Number.NaN,
    });
  }
  return { series, notes };
}

function ratesOf(rows: readonly number[][], labels: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  labels.forEach((l, j) => {
    out[l] = rows.length ? rows.reduce((s, r) => s + (r[j] ?? 0), 0) / rows.length : 0;
  });
  return out;
}

/** id → 0/1 labels (in run label order) from the data files the manifest lists. */
async function truthById(run: RunData): Promise<Map<string, number[]>> {
  const files = Array.isArray(run.manifest?.files) ? run.manifest.files.filter(isRecord) : [];
  if (files.length === 0) throw new Error("the manifest lists no data files");
  const c = run.trainConfig;
  const strings = (v: unknown) => (Array.isArray(v) ? v.map(String) : undefined);
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  const schema = schemaFromOptions({
    preset: str(c.preset),
    labels: strings(c.labels),
    textField: str(c.textField),
    idField: str(c.idField),
    positive: strings(c.positive),
  });
  const out = new Map<string, number[]>();
  for (const f of files) {
    const path = String(f.path);
    if (!existsSync(path)) throw new Error(`${path} is not there any more`);
    if (typeof f.sha256 === "string" && (await sha256File(path)) !== f.sha256) {
      throw new Error(`${path} changed since training (sha256 differs)`);
    }
    const data = await loadDataset(path, schema);
    for (const r of data.records) {
      out.set(
        r.id,
        run.labels.map((l) => {
          const j = data.labels.indexOf(l);
          return j < 0 ? 0 : (r.labels[j] ?? 0);
        }),
      );
    }
  }
  return out;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

export interface WorstError {
  id: string;
  text: string;
  score: number;
  truth: number;
  kind: "FP" | "FN";
}

/** The evaluation rows misclassified at `threshold` for one label, most confidently wrong first. */
export function worstErrors(
  predictions: readonly EvalPrediction[],
  label: string,
  threshold: number,
  limit: number,
): WorstError[] {
  const wrong: WorstError[] = [];
  for (const p of predictions) {
    const score = p.probs[label] as number;
    const truth = p.truth[label] as number;
    const predicted = score >= threshold;
    if (predicted && truth === 0) wrong.push({ id: p.id, text: p.text, score, truth, kind: "FP" });
    if (!predicted && truth === 1) wrong.push({ id: p.id, text: p.text, score, truth, kind: "FN" });
  }
  // Distance from the truth: a negative scored 0.99 is worse than one scored 0.6.
  wrong.sort((a, b) => Math.abs(b.truth - b.score) - Math.abs(a.truth - a.score) || a.id.localeCompare(b.id));
  return wrong.slice(0, limit);
}

/** Every chart of a run's report, in page order. */
function runCharts(
  run: RunData,
  scores: LabelScores[],
  slugs: string[],
  evalReport: EvalReport | null,
  rates: SplitRates,
): ChartEntry[] {
  const charts: ChartEntry[] = [];
  if (run.steps.length > 0 || run.evals.some((e) => e.loss !== undefined)) {
    charts.push({
      name: "loss",
      spec: lossChart(run.steps, run.evals),
      caption: "Training loss per optimizer step and validation loss at each evaluation.",
    });
  }
  if (run.steps.length > 0) {
    charts.push({
      name: "learning-rate",
      spec: learningRateChart(run.steps),
      caption: `The learning-rate schedule (${String(run.trainConfig.scheduler ?? "?")}, warm-up ratio ${String(run.trainConfig.warmupRatio ?? "?")}).`,
    });
  }
  if (run.evals.length > 0) {
    charts.push({
      name: "f1-by-epoch",
      spec: f1ByEpochChart(run.evals, run.labels),
      caption: "F1 per label on the validation split at each evaluation.",
    });
  }
  if (run.predictions.length > 0) {
    scores.forEach((s, j) => {
      const m = evalReport?.perLabel[s.label];
      const slug = slugs[j] as string;
      charts.push(
        {
          name: `confusion-${slug}`,
          spec: confusionChart(s),
          caption: `${s.label}: confusion matrices at 0.5 and at the tuned threshold.`,
        },
        {
          name: `pr-${slug}`,
          spec: precisionRecallChart(s, m?.prAuc ?? Number.NaN),
          caption: `${s.label}: precision–recall curve; points mark the thresholds.`,
        },
        {
          name: `roc-${slug}`,
          spec: rocChart(s, m?.rocAuc ?? null),
          caption: `${s.label}: ROC curve; points mark the thresholds.`,
        },
        {
          name: `scores-${slug}`,
          spec: scoreHistogramChart(s),
          caption: `${s.label}: predicted probabilities of positive vs negative rows.`,
        },
        {
          name: `reliability-${slug}`,
          spec: reliabilityChart(s),
          caption: `${s.label}: reliability diagram (${ECE_BINS} equal-width bins); points on the diagonal are calibrated.`,
        },
      );
    });
  }
  if (rates.series.length > 0) {
    charts.push({
      name: "label-rates",
      spec: labelRatesChart(rates.series, run.labels),
      caption: "Positive rate of each label in each split and in each epoch's training set.",
    });
  }
  return charts;
}

/** Renders every chart, writes `<imgs>/<name>.svg|.png`, returns the SVG text by name. */
async function renderAll(
  charts: ChartEntry[],
  imgsDir: string,
  options: ReportOptions,
): Promise<Map<string, string>> {
  const svgs = new Map<string, string>();
  let k = 0;
  for (const c of charts) {
    options.onProgress?.(`chart ${++k}/${charts.length}: ${c.name}`);
    const rendered = await renderChart(c.spec, options);
    await writeFileAtomic(join(imgsDir, `${c.name}.svg`), rendered.svg);
    await writeFileAtomic(join(imgsDir, `${c.name}.png`), rendered.png);
    svgs.set(c.name, rendered.svg);
  }
  return svgs;
}

/** A chart inlined as SVG with its caption; with `imgsHref`, links to its PNG and SVG files there. */
function figure(c: ChartEntry, svg: string, imgsHref?: string): Html {
  const file = (ext: string) => `${imgsHref}/${encodeURIComponent(c.name)}.${ext}`;
  const links = imgsHref ? html` <a href="${file("png")}">PNG</a> · <a href="${file("svg")}">SVG</a>` : null;
  return html`<figure id="chart-${c.name}" data-chart="${c.name}">${inlineSvg(svg, c.name)}
<figcaption>${c.caption}${links}</figcaption></figure>`;
}

/**
 * Expected calibration error per label on the evaluation rows and, for a calibrated run, what its
 * calibration.json did on the validation split.
 */
async function calibrationSection(run: RunData, scores: readonly LabelScores[]): Promise<Html | null> {
  if (run.predictions.length === 0) return null;
  const cal = await readCalibration(run.dir, run.labels);
  const header = ["label", `ECE (${ECE_BINS} bins)`];
  if (cal) header.push("scale", "bias", "valid log-loss before → after", "valid ECE before → after");
  const rows = scores.map((s, j) => {
    const row: unknown[] = [s.label, num(expectedCalibrationError(s.scores, s.truth, ECE_BINS))];
    if (cal) {
      row.push(
        num(cal.scale[j]),
        num(cal.bias[j]),
        `${num(cal.logLoss.before[j])} → ${num(cal.logLoss.after[j])}`,
        `${num(cal.ece.before[j])} → ${num(cal.ece.after[j])}`,
      );
    }
    return row;
  });
  const note = cal
    ? `Probabilities are calibrated (${cal.method} scaling fitted per label on ${cal.rows} validation rows: p' = σ(scale · logit(p) + bias)); thresholds were tuned after calibration.`
    : "The run is not calibrated (train --calibrate temperature|platt).";
  return html`${heading("calibration", "Calibration", "確率の較正", 3)}
${table(header, rows)}
<p class="note">Expected calibration error: the rows are put in ${ECE_BINS} equal-width probability bins, and the gap between each bin's mean probability and its share of positive rows is averaged, weighted by rows. ${note}</p>`;
}

/** A heading (h2 by default) with the English title and its Japanese translation. */
function heading(id: string, en: string, ja: string, level = 2): Html {
  return html`<${raw(`h${level}`)} id="${id}">${en}<span class="ja">${ja}</span></${raw(`h${level}`)}>`;
}

/** "lo–hi" of a bootstrap interval, or "–". */
function interval(ci: [number, number] | null | undefined): string {
  return ci ? `${num(ci[0])}–${num(ci[1])}` : "–";
}

function metricsRow(
  name: string,
  m: LabelMetrics | AverageMetrics,
  f1At05: number | null,
  extra: unknown[] = [],
  withCi = false,
): unknown[] {
  const l = m as Partial<LabelMetrics>;
  return [
    name,
    ...extra,
    l.support ?? "",
    l.threshold === undefined ? "" : num(l.threshold),
    num(m.precision),
    num(m.recall),
    num(m.f1),
    ...(withCi ? [interval(m.ci95?.f1)] : []),
    num(f1At05),
    num(m.rocAuc),
    num(m.prAuc),
    ...(withCi ? [interval(m.ci95?.prAuc)] : []),
  ];
}

/** JSON with long arrays (split ids) shortened to their length, for display. */
function summarizeJson(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.length > 12 ? `[${value.length} items]` : value.map(summarizeJson);
  }
  if (isRecord(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, summarizeJson(v)]));
  return value;
}

function runName(dir: string): string {
  return basename(resolve(dir));
}

/**
 * Writes the HTML report of a run and its charts (`<run>/imgs/*.svg|png`).
 * @returns the path of the HTML file
 */
export async function buildReport(runDir: string, options: ReportOptions = {}): Promise<string> {
  const run = await readRun(runDir);
  const out = options.out ?? join(runDir, "report.html");
  const imgsDir = join(runDir, "imgs");
  const limit = options.worstErrors ?? 10;
  const slugs = labelSlugs(run.labels);
  const scores = labelScores(run);
  const evalReport = finalEvaluation(run);
  const at05 =
    run.predictions.length > 0
      ? evaluateAt(
          run,
          run.labels.map(() => 0.5),
        )
      : null;
  const rates = await dataLabelRates(run);
  const charts = runCharts(run, scores, slugs, evalReport, rates);
  const svgs = await renderAll(charts, imgsDir, options);
  const imgsHref = relativeHref(out, imgsDir);
  const fig = (name: string): Html | null => {
    const c = charts.find((x) => x.name === name);
    return c ? figure(c, svgs.get(name) as string, imgsHref) : null;
  };

  const c = run.config;
  const seconds = trainingSeconds(run);
  const producedBy = typeof c.toxloraVersion === "string" ? c.toxloraVersion : "unknown";
  const missing = run.missing.length
    ? html`<p class="note warn">Missing run files (the run may still be training): ${run.missing.join(", ")}</p>`
    : null;

  // Summary table: per label at the tuned threshold, F1 at 0.5 for comparison, then the averages.
  let summary: Html = html`<p class="note">No evaluation yet (${RUN_FILES.eval} and ${RUN_FILES.evalPredictions} are missing).</p>`;
  if (evalReport) {
    const ci = evalReport.bootstrap;
    const header = [
      "label",
      "support",
      "threshold",
      "precision",
      "recall",
      "F1",
      ...(ci ? ["F1 95% CI"] : []),
      "F1 @0.5",
      "ROC-AUC",
      "PR-AUC",
      ...(ci ? ["PR-AUC 95% CI"] : []),
    ];
    const rows = run.labels.map((l) => {
      const m = evalReport.perLabel[l];
      return m
        ? metricsRow(l, m, at05?.perLabel[l]?.f1 ?? null, [], !!ci)
        : [l, ...header.slice(1).map(() => "")];
    });
    const footer = [
      metricsRow("micro average", evalReport.micro, at05?.micro.f1 ?? null, [], !!ci),
      metricsRow("macro average", evalReport.macro, at05?.macro.f1 ?? null, [], !!ci),
    ];
    const ciNote = ci
      ? html` "95% CI" is a percentile bootstrap interval (${ci.resamples} resamples of the evaluation rows, seed ${ci.seed}): the range of values the metric would plausibly take on another sample of the same size. Two runs whose intervals overlap may not really differ: compare them with <code>toxlora compare</code>.`
      : null;
    summary = html`${table(header, rows, "summary", footer)}
${degenerateWarnings(run).map((w) => html`<p class="note warn">Warning: ${w}</p>`)}
<p class="note">${evalReport.rows} evaluation rows. Thresholds ${run.thresholdsTuned ? "tuned per label on the validation split (F1-maximising)" : "0.5 (no thresholds.json)"}; "F1 @0.5" is the same rows at threshold 0.5.${ciNote}</p>`;
  }

  const training = [fig("loss"), fig("learning-rate"), fig("f1-by-epoch")].filter((x) => x !== null);
  const perLabel = run.labels.map((l, j) => {
    const slug = slugs[j] as string;
    const figs = ["confusion", "pr", "roc", "scores", "reliability"]
      .map((k) => fig(`${k}-${slug}`))
      .filter((x) => x !== null);
    return html`${heading(`label-${j}`, `${l}`, "", 3)}
<div class="charts">${figs.length ? figs : html`<p class="note">No evaluation predictions.</p>`}</div>`;
  });

  const dataTable = rates.series.length
    ? table(
        ["data set", "rows", ...run.labels],
        rates.series.map((s) => [
          s.name,
          Number.isFinite(s.rows) ? s.rows : "–",
          ...run.labels.map((l) => pct(s.rates[l])),
        ]),
      )
    : html`<p class="note">No label rates recorded.</p>`;

  // Not asked for: explained only when the model is small enough for it to be quick.
  const perKind = options.explainErrors ?? 3;
  const explained: ExplainedErrors | null =
    perKind > 0 && run.predictions.length > 0
      ? await explainErrors(run, {
          perKind,
          maxParams:
            options.explainErrors === undefined
              ? (options.explainMaxParams ?? EXPLAIN_BY_DEFAULT_MAX_PARAMS)
              : undefined,
          steps: options.explainSteps,
          threads: options.threads,
          onProgress: options.onProgress,
        })
      : null;
  const errors = run.labels.map((l, j) => {
    const rows = worstErrors(run.predictions, l, run.thresholds[j] as number, limit);
    const body = rows.length
      ? table(
          ["", "score", "truth", "id", "text"],
          rows.map((e) => [
            e.kind === "FP" ? "false positive / 誤検出" : "false negative / 見逃し",
            num(e.score),
            e.truth,
            e.id,
            html`<div class="text">${excerpt(e.text)}</div>`,
          ]),
          "errors",
        )
      : html`<p class="note">No misclassified rows at the tuned threshold.</p>`;
    const why = explained ? explainedErrorsHtml(l, explained.cases[j] ?? []) : null;
    return html`${heading(`errors-${j}`, l, "", 3)}${body}${why}`;
  });

  const body = html`<header><h1>toxlora report — ${runName(runDir)}</h1>
<p>model ${String(c.model ?? "?")} · ${run.labels.length} labels · ${String(run.trainConfig.epochs ?? "?")} epoch(s)${seconds !== null ? html` · trained in ${formatDuration(seconds)}` : null}${evalReport ? html` · macro F1 ${num(evalReport.macroF1)}` : null}</p></header>
<nav><a href="#summary">Summary</a><a href="#training">Training</a><a href="#labels">Per label</a><a href="#data">Data</a><a href="#errors">Errors</a><a href="#config">Config</a></nav>
<main>
${missing}
${heading("summary", "Summary", "評価のまとめ")}
${summary}
${heading("training", "Training curves", "学習曲線")}
<div class="charts">${training.length ? training : html`<p class="note">No training records (${RUN_FILES.metrics}).</p>`}</div>
${heading("labels", "Per label", "ラベルごとの評価")}
<p class="note">On the evaluation rows (${run.predictions.length}). A row counts as positive when its probability ≥ the threshold.</p>
${await calibrationSection(run, scores)}
${perLabel}
${heading("data", "Data", "学習データ")}
<div class="charts">${fig("label-rates")}</div>
${dataTable}
${rates.notes.map((n) => html`<p class="note">${n}</p>`)}
${heading("errors", "Worst errors", "誤分類の例")}
<p class="note">Per label, the evaluation rows misclassified at the tuned threshold, the most confident first (up to ${limit}).${explained ? ` Under each table, "Why" shows the ${perKind} highest-scored false positives and the ${perKind} lowest-scored false negatives with the stretches of the post that raised or lowered the label's logit (integrated gradients, ${options.explainSteps ?? 32} steps, baseline: the pad token's embedding).` : ""}</p>
${explained?.note ? html`<p class="note warn">${explained.note}</p>` : null}
${errors}
${heading("config", "Run", "設定とデータ")}
${table(
  ["", ""],
  [
    ["run directory", resolve(runDir)],
    ["trained with toxlora", producedBy],
    ["report made with toxlora", VERSION],
    ["training time", seconds === null ? "not recorded" : formatDuration(seconds)],
  ],
)}
<h3>config.json</h3>
<pre>${JSON.stringify(c, null, 2)}</pre>
<h3>manifest.json</h3>
${run.manifest ? html`<p class="note">Long id lists are shortened here; the full file is in the run directory.</p><pre>${JSON.stringify(summarizeJson(run.manifest), null, 2)}</pre>` : html`<p class="note">No manifest.</p>`}
</main>`;
  options.onProgress?.(`writing ${out}`);
  const css = explained ? EXPLAINED_ERRORS_CSS : "";
  const text = await page(`toxlora report — ${runName(runDir)}`, body, css);
  await writeFileAtomic(out, options.showPaths ? text : await pathsRelativeToRun(text, runDir));
  return out;
}

function excerpt(text: string, max = 500): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max).join("")}…`;
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - m * 60);
  return m < 60 ? `${m} min ${s} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A relative URL from the HTML file's folder to `target` (a file: URL only across drives). */
function relativeHref(htmlFile: string, target: string): string {
  const to = resolve(target);
  const rel = relative(resolve(htmlFile, ".."), to);
  if (rel === "") return ".";
  if (isAbsolute(rel)) return `file://${to.split(sep).map(encodeURIComponent).join("/")}`;
  return rel.split(sep).map(encodeURIComponent).join("/");
}

// ---------------------------------------------------------------------------------------------
// Comparison of several runs

/** One section per run after the first: its paired bootstrap against the first run. */
async function pairedSections(
  runDirs: readonly string[],
  names: readonly string[],
  onProgress?: (message: string) => void,
): Promise<Html[]> {
  const out: Html[] = [];
  for (let i = 1; i < runDirs.length; i++) {
    const title = `${names[i]} − ${names[0]}`;
    onProgress?.(`paired bootstrap ${title}`);
    try {
      const r = await compareRuns(runDirs[0] as string, runDirs[i] as string);
      out.push(html`${heading(`paired-${i}`, title, "", 3)}
${r.warnings.map((w) => html`<p class="note warn">Warning: ${w}</p>`)}
<p class="note">${r.rows} rows scored by both runs; ${r.comparison.resamples} paired resamples (seed ${r.comparison.seed}).</p>
${table(COMPARISON_HEADER, comparisonRows(r.comparison, ["f1", "prAuc", "rocAuc"]), "paired")}`);
    } catch (err) {
      out.push(
        html`${heading(`paired-${i}`, title, "", 3)}<p class="note warn">No paired comparison: ${(err as Error).message}</p>`,
      );
    }
  }
  return out;
}

export interface ComparedRun {
  name: string;
  dir: string;
  labels: string[];
  perLabel: Record<string, { f1: number; prAuc: number }>;
  macroF1: number | null;
  microF1: number | null;
  macroPrAuc: number | null;
  trainSeconds: number | null;
  evalRows: number;
}

/** Short unique names for run folders: the path parts after their common prefix. */
export function runNames(dirs: readonly string[]): string[] {
  const parts = dirs.map((d) => resolve(d).split(sep).filter(Boolean));
  let common = 0;
  const minLen = Math.min(...parts.map((p) => p.length));
  while (common < minLen - 1 && parts.every((p) => p[common] === parts[0]?.[common])) common++;
  const names = parts.map((p) => p.slice(common).join("/"));
  return new Set(names).size === names.length ? names : dirs.map((d) => resolve(d));
}

/** The numbers a comparison shows for one run. */
export async function compareRun(dir: string, name: string): Promise<ComparedRun> {
  const run = await readRun(dir);
  const ev = finalEvaluation(run);
  const perLabel: ComparedRun["perLabel"] = {};
  for (const l of run.labels) {
    const m = ev?.perLabel[l];
    if (m) perLabel[l] = { f1: m.f1, prAuc: m.prAuc };
  }
  return {
    name,
    dir: resolve(dir),
    labels: run.labels,
    perLabel,
    macroF1: ev?.macroF1 ?? null,
    microF1: ev?.microF1 ?? null,
    macroPrAuc: ev?.macro.prAuc ?? null,
    trainSeconds: trainingSeconds(run),
    evalRows: ev?.rows ?? 0,
  };
}

/**
 * Writes one HTML page comparing runs side by side: per-label F1 and PR-AUC, averages, training time.
 * @returns the path written
 */
export async function buildComparison(
  runDirs: readonly string[],
  out: string,
  options: RenderOptions & {
    onProgress?: (message: string) => void;
    /** Keep absolute local paths (default: relative to the page's folder, like a run's report). */
    showPaths?: boolean;
  } = {},
): Promise<string> {
  if (runDirs.length < 2) throw new Error("--compare needs at least two run directories");
  const names = runNames(runDirs);
  const runs: ComparedRun[] = [];
  for (let i = 0; i < runDirs.length; i++)
    runs.push(await compareRun(runDirs[i] as string, names[i] as string));
  // Labels of all runs, in first-seen order (runs may have different label sets).
  const labels = [...new Set(runs.flatMap((r) => r.labels))];

  const metricChart = (key: "f1" | "prAuc", title: string) =>
    barChart(
      runs.flatMap((r) =>
        labels
          .filter((l) => r.perLabel[l])
          // Three decimals, as in the tables (the bars print their values).
          .map((l) => ({
            category: l,
            value: Math.round((r.perLabel[l]?.[key] as number) * 1000) / 1000,
            series: r.name,
          })),
      ),
      {
        title,
        valueTitle: key === "f1" ? "F1 (tuned threshold)" : "average precision",
        showValues: runs.length <= 3,
      },
    );
  const charts: ChartEntry[] = [
    {
      name: "compare-f1",
      spec: metricChart("f1", "F1 per label / ラベルごとの F1"),
      caption: "F1 at each run's tuned thresholds.",
    },
    {
      name: "compare-pr-auc",
      spec: metricChart("prAuc", "PR-AUC per label / ラベルごとの PR-AUC"),
      caption: "Average precision (threshold-free).",
    },
  ];
  if (runs.some((r) => r.trainSeconds !== null)) {
    charts.push({
      name: "compare-time",
      spec: barChart(
        runs
          .filter((r) => r.trainSeconds !== null)
          .map((r) => ({ category: r.name, value: Math.round((r.trainSeconds as number) * 10) / 10 })),
        { title: "Training time / 学習時間", valueTitle: "seconds" },
      ),
      caption: "Wall-clock training time recorded by each run.",
    });
  }
  const svgs = new Map<string, string>();
  for (const c of charts) {
    options.onProgress?.(`chart ${c.name}`);
    svgs.set(c.name, (await renderChart(c.spec, options)).svg);
  }

  // Best value per label is bold, so the winner of each row stands out.
  const cellsFor = (key: "f1" | "prAuc") =>
    labels.map((l) => {
      const values = runs.map((r) => r.perLabel[l]?.[key]);
      const present = values.filter((v): v is number => v !== undefined);
      // Bold only marks a winner among at least two runs that have the label.
      const best = present.length > 1 ? Math.max(...present) : Number.NaN;
      return [
        l,
        ...values.map((v) =>
          v === undefined ? "–" : v === best ? html`<span class="best">${num(v)}</span>` : num(v),
        ),
      ];
    });
  const paired = await pairedSections(runDirs, names, options.onProgress);
  const runHeader = ["label", ...runs.map((r) => r.name)];
  const body = html`<header><h1>toxlora — comparison of ${runs.length} runs</h1>
<p>${runs.map((r) => r.name).join(" · ")}</p></header>
<main>
${heading("runs", "Runs", "比較する実行")}
${table(
  ["run", "directory", "evaluation rows", "macro F1", "micro F1", "macro PR-AUC", "training time"],
  runs.map((r) => [
    r.name,
    r.dir,
    r.evalRows,
    num(r.macroF1),
    num(r.microF1),
    num(r.macroPrAuc),
    r.trainSeconds === null ? "–" : formatDuration(r.trainSeconds),
  ]),
)}
${heading("f1", "F1 per label", "ラベルごとの F1")}
${table(runHeader, cellsFor("f1"))}
${heading("pr-auc", "PR-AUC per label", "ラベルごとの PR-AUC")}
${table(runHeader, cellsFor("prAuc"))}
${heading("paired", `Paired differences against ${runs[0]?.name}`, "ペアでの差（ブートストラップ）")}
<p class="note">Each run B against the first run A on the rows both evaluated: B − A per label and metric, the 95% interval of that difference over paired bootstrap resamples (the same resampled rows for both runs), and P(B&gt;A), the share of resamples where B is better. An interval that excludes 0 is a difference the rows support, even when the runs' own intervals overlap.</p>
${paired}
${heading("charts", "Charts", "グラフ")}
<div class="charts">${charts.map((c) => figure(c, svgs.get(c.name) as string))}</div>
<p class="note">Made with toxlora ${VERSION}. Each run's numbers come from its ${RUN_FILES.eval} (or its evaluation predictions).</p>
</main>`;
  const text = await page("toxlora — run comparison", body);
  await writeFileAtomic(
    out,
    options.showPaths ? text : await pathsRelativeToPage(text, resolve(out, ".."), runDirs),
  );
  return out;
}
