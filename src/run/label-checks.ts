// Labels whose decisions mean nothing. A model that has not learned a label gives every row about
// the same score (e.g. 0.5002); wherever its threshold lies, it then flags every row or none,
// whichever side of the threshold that score falls on. No threshold can fix this (there is no
// ranking to cut), so the threshold is left as tuned and the label is reported instead: on stderr
// during train and eval, in eval.json's `degenerate` and in the report.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { logit } from "./calibration.js";
import { RUN_FILES } from "./types.js";

/**
 * Scores of a split whose logits span less than this (max − min) are taken as constant: about
 * 0.0025 in probability around 0.5. A model that ranks rows spreads its logits by far more than that.
 */
export const CONSTANT_LOGIT_SPREAD = 0.01;

/** One split's scores and decisions for one label. */
export interface SplitCheck {
  rows: number;
  /** Lowest and highest score (the model's own, before calibration). */
  min: number;
  max: number;
  /** Rows flagged at the label's threshold, and rows whose truth is positive. */
  flagged: number;
  positives: number;
}

/** Why a label's decisions mean nothing, per split (eval.json's `degenerate.<label>`). */
export interface DegenerateLabel {
  /** The scores hardly vary on some split (logit spread < CONSTANT_LOGIT_SPREAD). */
  constantScores: boolean;
  /** Per split: "all" = every row flagged though some are negative; "none" = no row, though some are positive. */
  oneClass: Record<string, "all" | "none">;
  threshold: number;
  splits: Record<string, SplitCheck>;
  warning: string;
}

/** A split as the check needs it: scores (uncalibrated), final probabilities, truth. */
export interface CheckedSplit {
  name: string;
  scores: readonly (readonly number[])[];
  probs: readonly (readonly number[])[];
  truth: readonly (readonly number[])[];
}

function splitCheck(s: CheckedSplit, j: number, threshold: number): SplitCheck {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let flagged = 0;
  let positives = 0;
  s.scores.forEach((row, i) => {
    const p = row[j] as number;
    min = Math.min(min, p);
    max = Math.max(max, p);
    if ((s.probs[i]?.[j] as number) >= threshold) flagged++;
    positives += s.truth[i]?.[j] as number;
  });
  return { rows: s.scores.length, min, max, flagged, positives };
}

function oneClassOf(c: SplitCheck): "all" | "none" | null {
  if (c.flagged === c.rows && c.positives < c.rows) return "all";
  if (c.flagged === 0 && c.positives > 0) return "none";
  return null;
}

const range = (c: SplitCheck) =>
  c.min === c.max ? c.min.toFixed(4) : `${c.min.toFixed(4)}–${c.max.toFixed(4)}`;

function warningFor(label: string, d: Omit<DegenerateLabel, "warning">): string {
  const parts: string[] = [];
  const names = Object.keys(d.splits);
  if (d.constantScores)
    parts.push(
      `its scores hardly vary (${names.map((n) => `${n} ${range(d.splits[n] as SplitCheck)}`).join(", ")}): the model has not learned it`,
    );
  const t = d.threshold.toFixed(4);
  const of = (kind: "all" | "none") => Object.keys(d.oneClass).filter((n) => d.oneClass[n] === kind);
  const all = of("all").map((n) => {
    const c = d.splits[n] as SplitCheck;
    return `${n} ${c.rows} of ${c.rows} (${c.rows - c.positives} negative)`;
  });
  const none = of("none").map((n) => {
    const c = d.splits[n] as SplitCheck;
    return `${n} 0 of ${c.rows} (${c.positives} positive)`;
  });
  if (all.length) parts.push(`at threshold ${t} it flags every row: ${all.join(", ")}`);
  if (none.length) parts.push(`at threshold ${t} it flags no row: ${none.join(", ")}`);
  return `label "${label}": ${parts.join("; ")}. Its decisions mean nothing; give it more positive rows, train longer, or leave it out (--labels)`;
}

/**
 * The labels whose scores are (near-)constant on a split, or whose decisions put every row of a
 * split in one class against its truth. Splits without rows are skipped.
 */
export function degenerateLabels(
  labels: readonly string[],
  thresholds: readonly number[],
  splits: readonly CheckedSplit[],
): Record<string, DegenerateLabel> {
  const out: Record<string, DegenerateLabel> = {};
  const used = splits.filter((s) => s.scores.length > 0);
  labels.forEach((label, j) => {
    const threshold = thresholds[j] as number;
    const checks = Object.fromEntries(used.map((s) => [s.name, splitCheck(s, j, threshold)]));
    const constantScores = Object.values(checks).some(
      (c) => c.rows > 1 && logit(c.max) - logit(c.min) < CONSTANT_LOGIT_SPREAD,
    );
    const oneClass: Record<string, "all" | "none"> = {};
    for (const [n, c] of Object.entries(checks)) {
      const kind = oneClassOf(c);
      if (kind) oneClass[n] = kind;
    }
    if (!constantScores && Object.keys(oneClass).length === 0) return;
    const d = { constantScores, oneClass, threshold, splits: checks };
    out[label] = { ...d, warning: warningFor(label, d) };
  });
  return out;
}

/** The warnings of eval.json's `degenerate` as read (nothing for a missing or foreign value). */
export function warningsOf(degenerate: unknown): string[] {
  if (degenerate === null || typeof degenerate !== "object") return [];
  return Object.values(degenerate as Record<string, { warning?: unknown } | null>)
    .map((d) => d?.warning)
    .filter((w): w is string => typeof w === "string");
}

/**
 * The warnings a run's eval.json records under `degenerate` (none when the file is missing, was
 * written before the check, or cannot be read: this only adds notices to loading a run).
 */
export async function savedDegenerateWarnings(runDir: string): Promise<string[]> {
  try {
    const ev = JSON.parse(await readFile(join(runDir, RUN_FILES.eval), "utf8")) as { degenerate?: unknown };
    return warningsOf(ev?.degenerate);
  } catch {
    return [];
  }
}
