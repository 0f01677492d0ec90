// Two runs side by side on the same rows: pairs their evaluation predictions by row id, warns when
// they were not evaluated on the same rows, and runs the paired bootstrap (src/train/compare.ts).
// Used by `toxlora compare` and by `toxlora report --compare`.
import { join } from "node:path";
import { evaluateRun } from "../predict/evaluate.js";
import { CI_METRICS, type CiMetric } from "../run/bootstrap.js";
import { type PairedComparison, type PairedMetrics, pairedBootstrap } from "../train/compare.js";
import { type EvalPrediction, type RunData, readPredictionsFile, readRun } from "./run.js";

/** A paired comparison of run B against run A, with what the reader must know about the rows. */
export interface RunComparison {
  dirA: string;
  dirB: string;
  /** The rows both runs scored (by id), in A's order. */
  rows: number;
  /** Set when the runs were not evaluated on the same rows, or on different data. */
  warnings: string[];
  comparison: PairedComparison;
}

export interface CompareRunsOptions {
  /** Score this labelled file with both runs (via `evaluateRun`) instead of their test splits. */
  data?: string;
  /** Paired resamples (default 1000). */
  resamples?: number;
  /** Seed of the resampling (default 42). */
  seed?: number;
}

type Manifest = { files?: { role?: string; path?: string; sha256?: string }[] } | null;

/** Data files whose content differs between the two manifests (by role and sha256). */
function manifestDifferences(a: Manifest, b: Manifest): string[] {
  if (!a || !b) return [];
  const byRole = (m: NonNullable<Manifest>) => new Map((m.files ?? []).map((f) => [f.role ?? "data", f]));
  const fa = byRole(a);
  const fb = byRole(b);
  const out: string[] = [];
  for (const role of new Set([...fa.keys(), ...fb.keys()])) {
    const x = fa.get(role);
    const y = fb.get(role);
    if (x?.sha256 !== y?.sha256)
      out.push(
        `${role} file: A ${x?.path ?? "none"} (${x?.sha256?.slice(0, 12) ?? "–"}), B ${y?.path ?? "none"} (${y?.sha256?.slice(0, 12) ?? "–"})`,
      );
  }
  return out;
}

function byId(rows: readonly EvalPrediction[], what: string): Map<string, EvalPrediction> {
  const m = new Map<string, EvalPrediction>();
  for (const r of rows) {
    if (m.has(r.id))
      throw new Error(`${what}: row id ${JSON.stringify(r.id)} appears twice; rows cannot be paired`);
    m.set(r.id, r);
  }
  return m;
}

/**
 * Pairs two prediction sets by row id and runs the paired bootstrap. Throws when no row is shared;
 * warns (in the result) when the row sets, the truth of a shared row or the labels differ.
 */
export function comparePredictions(
  a: {
    dir: string;
    labels: readonly string[];
    thresholds: readonly number[];
    predictions: readonly EvalPrediction[];
  },
  b: {
    dir: string;
    labels: readonly string[];
    thresholds: readonly number[];
    predictions: readonly EvalPrediction[];
  },
  options: { resamples?: number; seed?: number } = {},
): RunComparison {
  const warnings: string[] = [];
  const labels = a.labels.filter((l) => b.labels.includes(l));
  if (labels.length === 0) throw new Error(`${a.dir} and ${b.dir} have no label in common`);
  if (labels.length !== a.labels.length || labels.length !== b.labels.length)
    warnings.push(`the runs have different labels; only ${labels.join(", ")} are compared`);
  const rowsB = byId(b.predictions, b.dir);
  byId(a.predictions, a.dir);
  const shared = a.predictions.filter((r) => rowsB.has(r.id));
  if (shared.length === 0)
    throw new Error(`${a.dir} and ${b.dir} were evaluated on different rows: no row id in common`);
  if (shared.length !== a.predictions.length || shared.length !== b.predictions.length) {
    warnings.push(
      `the runs were evaluated on different rows: A scored ${a.predictions.length}, B ${b.predictions.length}, ` +
        `${shared.length} in common; only the common rows are compared`,
    );
  }
  const truthDiffers = shared.filter((r) => labels.some((l) => r.truth[l] !== rowsB.get(r.id)?.truth[l]));
  if (truthDiffers.length > 0) {
    warnings.push(
      `${truthDiffers.length} shared rows have a different truth in the two runs (e.g. id ${truthDiffers[0].id}); A's truth is used`,
    );
  }
  const thresholdsOf = (run: typeof a) => labels.map((l) => run.thresholds[run.labels.indexOf(l)] as number);
  const comparison = pairedBootstrap(
    { probs: shared.map((r) => labels.map((l) => r.probs[l])), thresholds: thresholdsOf(a) },
    {
      probs: shared.map((r) => labels.map((l) => (rowsB.get(r.id) as EvalPrediction).probs[l])),
      thresholds: thresholdsOf(b),
    },
    shared.map((r) => labels.map((l) => r.truth[l])),
    labels,
    options,
  );
  return { dirA: a.dir, dirB: b.dir, rows: shared.length, warnings, comparison };
}

/**
 * Compares run B with run A: on their own test splits (predictions/eval.jsonl), or with `data`
 * on one labelled file that both runs score.
 */
export async function compareRuns(
  dirA: string,
  dirB: string,
  options: CompareRunsOptions = {},
): Promise<RunComparison> {
  const [a, b] = [await readRun(dirA), await readRun(dirB)];
  if (options.data) {
    const load = async (run: RunData) => {
      const r = await evaluateRun(run.dir, options.data as string, { bootstrap: 0 });
      return {
        ...run,
        thresholds: r.thresholds,
        predictions: await readPredictionsFile(join(r.outDir, "predictions.jsonl"), run.labels),
      };
    };
    return comparePredictions(await load(a), await load(b), options);
  }
  for (const r of [a, b])
    if (r.predictions.length === 0) throw new Error(`${r.dir} has no evaluation predictions to compare`);
  const result = comparePredictions(a, b, options);
  const files = manifestDifferences(a.manifest as Manifest, b.manifest as Manifest);
  if (files.length > 0)
    result.warnings.push(`the runs were made from different data (manifest sha256): ${files.join("; ")}`);
  return result;
}

const signed = (x: number | null): string => (x === null ? "–" : `${x >= 0 ? "+" : ""}${x.toFixed(3)}`);
const plain = (x: number | null): string => (x === null ? "–" : x.toFixed(3));

/** The rows of a comparison table: label, metric, A, B, B − A, its interval, P(B > A). */
export function comparisonRows(c: PairedComparison, metrics: readonly CiMetric[] = CI_METRICS): string[][] {
  const rows: string[][] = [];
  const add = (name: string, p: PairedMetrics) => {
    for (const m of metrics) {
      const x = p[m];
      const ci = x.ci95 ? `[${signed(x.ci95[0])}, ${signed(x.ci95[1])}]` : "–";
      rows.push([name, m, plain(x.a), plain(x.b), signed(x.diff), ci, plain(x.bBetter)]);
    }
  };
  for (const l of c.labels) add(l, c.perLabel[l]);
  add("micro avg", c.micro);
  add("macro avg", c.macro);
  return rows;
}

export const COMPARISON_HEADER = ["label", "metric", "A", "B", "B−A", "95% CI of B−A", "P(B>A)"];

/** The comparison as an aligned terminal table, preceded by its warnings. */
export function formatComparison(r: RunComparison, metrics: readonly CiMetric[] = CI_METRICS): string {
  const c = r.comparison;
  const all = [COMPARISON_HEADER, ...comparisonRows(c, metrics)];
  const width = (s: string) => [...s].reduce((w, ch) => w + (/[\u1100-\uffff]/.test(ch) ? 2 : 1), 0);
  const widths = COMPARISON_HEADER.map((_, k) => Math.max(...all.map((row) => width(row[k] as string))));
  const line = (row: string[]) =>
    row
      .map((cell, k) => {
        const pad = " ".repeat((widths[k] as number) - width(cell));
        return k < 2 ? cell + pad : pad + cell;
      })
      .join("  ")
      .trimEnd();
  return [
    `A: ${r.dirA}`,
    `B: ${r.dirB}`,
    `${r.rows} rows scored by both; ${c.resamples} paired bootstrap resamples (seed ${c.seed})`,
    ...r.warnings.map((w) => `WARNING: ${w}`),
    "",
    ...all.map(line),
    "",
    "B−A > 0: B is better. An interval that excludes 0 is a difference the rows support;",
    "P(B>A) is the share of resamples where B beats A.",
    "",
  ].join("\n");
}
