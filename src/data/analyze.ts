// Label statistics of a dataset: what the prototype's label_rate_analysis.py printed, plus the
// co-occurrence of labels, the overall label distribution and text lengths.
import {
  formatHistogram,
  formatRateLine,
  percent,
  pyFixed,
  renderCsvTable,
  renderMarkdownTable,
  renderTextTable,
  type Table,
} from "./format.js";
import type { DataRecord } from "./load.js";

export interface LabelStats {
  name: string;
  /** Rows where the label is 1 / 0, over all rows. */
  positive: number;
  negative: number;
  /** positive / rows. */
  rate: number;
  /** Over the rows that have at least one positive label (what the prototype printed). */
  negativeAmongAny: number;
  rateAmongAny: number;
}

/** Text length quantiles in characters (Unicode code points), linear interpolation like numpy. */
export interface LengthStats {
  count: number;
  min: number;
  p25: number;
  median: number;
  p75: number;
  p90: number;
  max: number;
  mean: number;
}

export interface AnalysisResult {
  rows: number;
  labels: string[];
  /** positivesPerRow[k] = rows with exactly k positive labels, k = 0..labels.length. */
  positivesPerRow: number[];
  /** Rows with no positive label, and with at least one. */
  nonePositive: number;
  anyPositive: number;
  perLabel: LabelStats[];
  /** cooccurrence[i][j] = rows positive for both i and j (the diagonal is each label's count). */
  cooccurrence: number[][];
  /** Overall label counts, most frequent first; undefined when no row has one. */
  overall?: { value: string; count: number }[];
  /** Rows without an overall label (only meaningful when `overall` is set). */
  overallMissing: number;
  textLength: {
    all: LengthStats;
    /** Per label, over the rows where it is positive (null when it never is). */
    perLabel: (LengthStats | null)[];
  };
}

/** Quantile with linear interpolation between order statistics (numpy's default). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

export function lengthStats(values: readonly number[]): LengthStats {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p25: quantile(sorted, 0.25),
    median: quantile(sorted, 0.5),
    p75: quantile(sorted, 0.75),
    p90: quantile(sorted, 0.9),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
  };
}

/** Length in characters as a reader counts them (code points, so emoji count once). */
export function textLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

export function analyze(records: readonly DataRecord[], labelNames: readonly string[]): AnalysisResult {
  const L = labelNames.length;
  const positivesPerRow = new Array<number>(L + 1).fill(0);
  const positive = new Array<number>(L).fill(0);
  const cooccurrence = labelNames.map(() => new Array<number>(L).fill(0));
  const lengths: number[] = [];
  const lengthsByLabel: number[][] = labelNames.map(() => []);
  const overallCounts = new Map<string, number>();
  let overallMissing = 0;

  for (const r of records) {
    if (r.labels.length !== L) {
      throw new Error(`record ${r.id} (line ${r.line}) has ${r.labels.length} labels, expected ${L}`);
    }
    const len = textLength(r.text);
    lengths.push(len);
    let k = 0;
    for (let i = 0; i < L; i++) {
      if (r.labels[i] !== 1) continue;
      k++;
      positive[i] = (positive[i] as number) + 1;
      (lengthsByLabel[i] as number[]).push(len);
      const row = cooccurrence[i] as number[];
      for (let j = 0; j < L; j++) if (r.labels[j] === 1) row[j] = (row[j] as number) + 1;
    }
    positivesPerRow[k] = (positivesPerRow[k] as number) + 1;
    if (r.overall === undefined) overallMissing++;
    else overallCounts.set(r.overall, (overallCounts.get(r.overall) ?? 0) + 1);
  }

  const rows = records.length;
  const nonePositive = positivesPerRow[0] as number;
  const anyPositive = rows - nonePositive;
  const perLabel = labelNames.map((name, i): LabelStats => {
    const pos = positive[i] as number;
    return {
      name,
      positive: pos,
      negative: rows - pos,
      rate: rows ? pos / rows : 0,
      negativeAmongAny: anyPositive - pos,
      rateAmongAny: anyPositive ? pos / anyPositive : 0,
    };
  });
  const overall =
    overallCounts.size > 0
      ? [...overallCounts]
          .map(([value, count]) => ({ value, count }))
          .sort((a, b) => b.count - a.count || a.value.localeCompare(b.value))
      : undefined;
  return {
    rows,
    labels: [...labelNames],
    positivesPerRow,
    nonePositive,
    anyPositive,
    perLabel,
    cooccurrence,
    overall,
    overallMissing,
    textLength: {
      all: lengthStats(lengths),
      perLabel: lengthsByLabel.map((ls) => (ls.length ? lengthStats(ls) : null)),
    },
  };
}

/** The prototype's lines for every label, over all rows of `result` (as `balance` prints them). */
export function rateLines(result: AnalysisResult): string[] {
  return result.perLabel.map((s) => formatRateLine(s.name, s.positive, s.negative));
}

/** The prototype's lines over the rows with at least one positive label (as analyze printed them). */
export function rateLinesAmongAny(result: AnalysisResult): string[] {
  return result.perLabel.map((s) => formatRateLine(s.name, s.positive, s.negativeAmongAny));
}

const round1 = (x: number) => (Number.isFinite(x) ? Number(pyFixed(x, 1)) : "");

/** The analysis as named tables (CSV/Markdown files of `analyze --out`). */
export function analysisTables(result: AnalysisResult): Record<string, Table> {
  const tables: Record<string, Table> = {
    labels: {
      title: "Label rates",
      headers: [
        "label",
        "yes",
        "no",
        "yes %",
        `yes (rows with any positive: ${result.anyPositive})`,
        "no (any)",
        "yes % (any)",
      ],
      rows: result.perLabel.map((s) => [
        s.name,
        s.positive,
        s.negative,
        percent(s.positive, result.rows),
        s.positive,
        s.negativeAmongAny,
        percent(s.positive, result.anyPositive),
      ]),
    },
    "positives-per-row": {
      title: "Positive labels per row",
      headers: ["positives", "rows", "%"],
      rows: result.positivesPerRow.map((n, k) => [k, n, percent(n, result.rows)]),
    },
    cooccurrence: {
      title: "Co-occurrence (rows positive for both labels)",
      headers: ["label", ...result.labels],
      rows: result.cooccurrence.map((row, i) => [result.labels[i] as string, ...row]),
    },
    "text-length": {
      title: "Text length (characters)",
      headers: ["rows", "count", "min", "p25", "median", "p75", "p90", "max", "mean"],
      rows: [
        ["all", ...lengthRow(result.textLength.all)],
        ...result.labels.map((name, i) => {
          const s = result.textLength.perLabel[i];
          return [name, ...(s ? lengthRow(s) : [0, "", "", "", "", "", "", ""])];
        }),
      ],
    },
  };
  if (result.overall) {
    const total = result.rows - result.overallMissing;
    tables.overall = {
      title: "Overall label",
      headers: ["label", "rows", "%"],
      rows: [
        ...result.overall.map((o) => [o.value, o.count, percent(o.count, total)]),
        ...(result.overallMissing ? [["(missing)", result.overallMissing, ""]] : []),
      ],
    };
  }
  return tables;
}

function lengthRow(s: LengthStats): (string | number)[] {
  return [
    s.count,
    s.min,
    round1(s.p25),
    round1(s.median),
    round1(s.p75),
    round1(s.p90),
    s.max,
    round1(s.mean),
  ];
}

/** Human-readable report: the prototype's lines first, then the extra tables. */
export function formatAnalysisText(result: AnalysisResult): string {
  const tables = analysisTables(result);
  const out = [
    `rows: ${result.rows}`,
    `positive labels per row: ${formatHistogram(result.positivesPerRow)}`,
    `rows with no positive label: ${result.nonePositive} (${percent(result.nonePositive, result.rows)}%), ` +
      `with at least one: ${result.anyPositive} (${percent(result.anyPositive, result.rows)}%)`,
    "",
    `label rates over rows with any positive label (${result.anyPositive}):`,
    ...rateLinesAmongAny(result),
    "",
    `label rates over all rows (${result.rows}):`,
    ...rateLines(result),
    "",
    `${tables.cooccurrence?.title}:`,
    renderTextTable(tables.cooccurrence as Table),
  ];
  if (tables.overall) out.push("", `${tables.overall.title}:`, renderTextTable(tables.overall));
  out.push("", `${tables["text-length"]?.title}:`, renderTextTable(tables["text-length"] as Table));
  return `${out.join("\n")}\n`;
}

export function formatAnalysisMarkdown(result: AnalysisResult, title = "Dataset analysis"): string {
  const parts = [
    `# ${title}`,
    "",
    `- rows: ${result.rows}`,
    `- positive labels per row: \`${formatHistogram(result.positivesPerRow)}\``,
    `- rows with no positive label: ${result.nonePositive}, with at least one: ${result.anyPositive}`,
  ];
  for (const t of Object.values(analysisTables(result)))
    parts.push("", `## ${t.title}`, "", renderMarkdownTable(t));
  return `${parts.join("\n")}\n`;
}

/** CSV of the main per-label table (the other tables are separate files with `--out`). */
export function formatAnalysisCsv(result: AnalysisResult): string {
  return renderCsvTable(analysisTables(result).labels as Table);
}
