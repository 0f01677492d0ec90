// Rebalancing: the prototype's hand-made downsampled files as named, composable strategies.
//
//   drop-all-negative   drop rows with no positive label (among the kept labels)
//   keep-labels:a,b,c   keep only these label columns
//   equalize:x          delete random rows positive for x and negative for every other kept label,
//                       until x is 50/50
//   target-ratio[:r]    delete rows while that brings the labels' positive rates closer to r (sum
//                       of squared distances); a label below r at the start never loses a positive
//                       row, and a label above r is never pushed below it
//   prototype           = keep-labels:obscene,discriminatory,corporate,drop-all-negative,equalize:obscene
//
// Strategies are written comma-separated; the arguments of keep-labels continue until the next
// strategy name. Whatever the written order, keep-labels applies first (so drop-all-negative only
// looks at the kept labels), then drop-all-negative, then equalize/target-ratio in written order.
import { displayWidth, percent } from "./format.js";
import type { DataRecord } from "./load.js";
import { createRng, type Rng } from "./random.js";

export type BalanceStep =
  | { kind: "keep-labels"; labels: string[] }
  | { kind: "drop-all-negative" }
  | { kind: "equalize"; label: string }
  | { kind: "target-ratio"; ratio?: number };

export const STRATEGY_NAMES = [
  "drop-all-negative",
  "keep-labels",
  "equalize",
  "target-ratio",
  "prototype",
] as const;

/** The prototype's recipe, as steps. */
export const PROTOTYPE_STEPS: readonly BalanceStep[] = [
  { kind: "keep-labels", labels: ["obscene", "discriminatory", "corporate"] },
  { kind: "drop-all-negative" },
  { kind: "equalize", label: "obscene" },
];

/** Parses a `--strategy` string such as "drop-all-negative,keep-labels:a,b" into steps. */
export function parseStrategy(spec: string): BalanceStep[] {
  const steps: BalanceStep[] = [];
  const tokens = spec
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  if (tokens.length === 0) throw new Error("empty balance strategy");
  for (const token of tokens) {
    const colon = token.indexOf(":");
    const name = colon === -1 ? token : token.slice(0, colon);
    const arg = colon === -1 ? undefined : token.slice(colon + 1).trim();
    const last = steps[steps.length - 1];
    if (!(STRATEGY_NAMES as readonly string[]).includes(name)) {
      // Not a strategy name: another label for the preceding keep-labels.
      if (last?.kind === "keep-labels" && colon === -1) {
        last.labels.push(token);
        continue;
      }
      throw new Error(`unknown balance strategy "${token}" (known: ${STRATEGY_NAMES.join(", ")})`);
    }
    switch (name) {
      case "drop-all-negative":
      case "prototype":
        if (arg !== undefined) throw new Error(`strategy ${name} takes no argument ("${token}")`);
        if (name === "prototype") steps.push(...PROTOTYPE_STEPS.map(cloneStep));
        else steps.push({ kind: "drop-all-negative" });
        break;
      case "keep-labels":
        if (!arg) throw new Error('keep-labels needs labels, e.g. "keep-labels:obscene,violent"');
        steps.push({ kind: "keep-labels", labels: [arg] });
        break;
      case "equalize":
        if (!arg) throw new Error('equalize needs a label, e.g. "equalize:obscene"');
        steps.push({ kind: "equalize", label: arg });
        break;
      case "target-ratio": {
        if (arg === undefined) {
          steps.push({ kind: "target-ratio" });
          break;
        }
        const ratio = Number(arg);
        checkRatio(ratio, arg);
        steps.push({ kind: "target-ratio", ratio });
        break;
      }
    }
  }
  return steps;
}

function cloneStep(s: BalanceStep): BalanceStep {
  return s.kind === "keep-labels" ? { kind: s.kind, labels: [...s.labels] } : { ...s };
}

function checkRatio(ratio: number, text: string | number = ratio): void {
  if (!(ratio > 0 && ratio < 1))
    throw new Error(`target ratio must be between 0 and 1 (exclusive), got ${text}`);
}

export interface BalanceOptions {
  /** Seed of the random deletions (equalize, target-ratio). Default 42. */
  seed?: number;
  /** Ratio for a `target-ratio` step written without one. Default 0.5. */
  ratio?: number;
}

export interface StepReport {
  /** The step as text, e.g. "equalize:obscene". */
  step: string;
  rowsBefore: number;
  rowsAfter: number;
  /** What the step achieved, e.g. "obscene 609/609" or the achieved rates. */
  note?: string;
  /** For target-ratio: the positive rate of each label afterwards. */
  achieved?: Record<string, number>;
  /** One line per label saying what the step did to it and why (target-ratio). */
  details?: string[];
}

export interface BalanceResult {
  records: DataRecord[];
  /** Label names of `records[i].labels` (fewer than the input's after keep-labels). */
  labels: string[];
  steps: StepReport[];
}

export function stepToString(step: BalanceStep): string {
  switch (step.kind) {
    case "keep-labels":
      return `keep-labels:${step.labels.join(",")}`;
    case "drop-all-negative":
      return step.kind;
    case "equalize":
      return `equalize:${step.label}`;
    case "target-ratio":
      return step.ratio === undefined ? step.kind : `target-ratio:${step.ratio}`;
  }
}

/**
 * Applies a strategy (a `--strategy` string or parsed steps) to loaded records. Returns new record
 * objects (their `raw` is shared with the input); the input is not modified. Same seed → same rows.
 */
export function balance(
  records: readonly DataRecord[],
  labels: readonly string[],
  strategy: string | readonly BalanceStep[],
  options: BalanceOptions = {},
): BalanceResult {
  const steps = typeof strategy === "string" ? parseStrategy(strategy) : strategy.map(cloneStep);
  const rng = createRng(options.seed ?? 42);
  const keeps = steps.filter((s) => s.kind === "keep-labels");
  if (keeps.length > 1) throw new Error("keep-labels may appear only once in a strategy");
  const ordered = [
    ...keeps,
    ...steps.filter((s) => s.kind === "drop-all-negative").slice(0, 1),
    ...steps.filter((s) => s.kind === "equalize" || s.kind === "target-ratio"),
  ];

  let current: DataRecord[] = [...records];
  let names = [...labels];
  const reports: StepReport[] = [];
  for (const step of ordered) {
    const before = current.length;
    let note: string | undefined;
    let achieved: Record<string, number> | undefined;
    let details: string[] | undefined;
    switch (step.kind) {
      case "keep-labels": {
        const idx = step.labels.map((n) => {
          const i = names.indexOf(n);
          if (i === -1) throw new Error(`keep-labels: unknown label "${n}" (labels: ${names.join(", ")})`);
          return i;
        });
        current = current.map((r) => ({ ...r, labels: idx.map((i) => r.labels[i] as number) }));
        names = idx.map((i) => names[i] as string);
        note = `${names.length} labels`;
        break;
      }
      case "drop-all-negative":
        current = current.filter((r) => r.labels.some((v) => v === 1));
        break;
      case "equalize": {
        const out = equalize(current, names, step.label, rng);
        current = out.records;
        note = out.note;
        break;
      }
      case "target-ratio": {
        const ratio = step.ratio ?? options.ratio ?? 0.5;
        checkRatio(ratio);
        const start = current;
        current = targetRatio(current, names.length, ratio, rng);
        achieved = Object.fromEntries(names.map((n, i) => [n, positiveRate(current, i)]));
        details = targetRatioDetails(start, current, names, ratio);
        note = `achieved rates (target ${ratio}): ${names
          .map((n, j) => `${n} ${percent(positiveCount(current, j), current.length)}%`)
          .join(", ")}`;
        break;
      }
    }
    reports.push({
      step: stepToString(step),
      rowsBefore: before,
      rowsAfter: current.length,
      ...(note === undefined ? {} : { note }),
      ...(achieved === undefined ? {} : { achieved }),
      ...(details === undefined ? {} : { details }),
    });
  }
  return { records: current, labels: names, steps: reports };
}

function positiveCount(records: readonly DataRecord[], j: number): number {
  let n = 0;
  for (const r of records) if (r.labels[j] === 1) n++;
  return n;
}

function positiveRate(records: readonly DataRecord[], j: number): number {
  return records.length ? positiveCount(records, j) / records.length : 0;
}

/** The prototype's step: delete random rows positive only for `label` until it is 50/50. */
function equalize(
  records: DataRecord[],
  names: string[],
  label: string,
  rng: Rng,
): { records: DataRecord[]; note: string } {
  const j = names.indexOf(label);
  if (j === -1) throw new Error(`equalize: unknown label "${label}" (labels: ${names.join(", ")})`);
  const pos = positiveCount(records, j);
  const excess = pos - (records.length - pos);
  // Candidates: positive for `label`, negative for every other label, so no other label loses a positive.
  const pool: number[] = [];
  records.forEach((r, k) => {
    if (r.labels[j] === 1 && r.labels.every((v, m) => m === j || v === 0)) pool.push(k);
  });
  const removeCount = Math.max(0, Math.min(excess, pool.length));
  const removed = new Set(rng.shuffle(pool).slice(0, removeCount));
  const kept = records.filter((_, k) => !removed.has(k));
  const keptPos = pos - removeCount;
  let note = `${label} ${keptPos}/${kept.length - keptPos}`;
  if (excess <= 0) note += `: nothing deleted, ${label} is already at most 50% positive`;
  else if (pool.length === 0)
    note += `: nothing deleted, no row is positive for ${label} alone (deleting any other would remove another label's positive)`;
  else if (removeCount < excess) note += ` (only ${pool.length} rows were positive for ${label} alone)`;
  return { records: kept, note };
}

/**
 * Greedy deletion towards a target positive rate. Rows with the same label vector are
 * interchangeable, so each step picks the best label pattern and deletes a random row of it.
 * A label below the target at the start keeps every positive row (so the result only depends on
 * the rates, never on how far deletions of negatives happened to lift a rare label), and a label
 * above it is never pushed below it. A higher target therefore never keeps more rows.
 */
function targetRatio(records: DataRecord[], L: number, ratio: number, rng: Rng): DataRecord[] {
  const groups = new Map<string, { pattern: number[]; rows: number[] }>();
  records.forEach((r, k) => {
    const key = r.labels.join("");
    let g = groups.get(key);
    if (!g) {
      g = { pattern: [...r.labels], rows: [] };
      groups.set(key, g);
    }
    g.rows.push(k);
  });
  // Fixed group order (by pattern) and shuffled rows within each group make the run seed-determined.
  const list = [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
  for (const g of list) rng.shuffle(g.rows);

  const pos = new Array<number>(L).fill(0);
  for (const r of records)
    for (let j = 0; j < L; j++) pos[j] = (pos[j] as number) + (r.labels[j] === 1 ? 1 : 0);
  let n = records.length;
  const protectedLabel = pos.map((c) => c / n < ratio);
  const cost = (count: number[], rows: number) => count.reduce((s, c) => s + (c / rows - ratio) ** 2, 0);
  const removed = new Set<number>();
  for (;;) {
    if (n <= 1) break;
    const current = cost(pos, n);
    let best: { g: (typeof list)[number]; cost: number; negatives: number } | undefined;
    for (const g of list) {
      if (g.rows.length === 0) continue;
      // Never delete a positive of a label that started below the target or is now at or below it.
      if (g.pattern.some((v, j) => v === 1 && (protectedLabel[j] || (pos[j] as number) / n <= ratio)))
        continue;
      const after = cost(
        pos.map((c, j) => c - (g.pattern[j] as number)),
        n - 1,
      );
      const negatives = g.pattern.filter((v) => v === 0).length;
      // Prefer the lowest cost; on ties, the most negative-heavy pattern.
      if (
        !best ||
        after < best.cost - 1e-12 ||
        (Math.abs(after - best.cost) <= 1e-12 && negatives > best.negatives)
      ) {
        best = { g, cost: after, negatives };
      }
    }
    if (!best || best.cost >= current - 1e-12) break;
    const k = best.g.rows.pop() as number;
    removed.add(k);
    n--;
    for (let j = 0; j < L; j++) pos[j] = (pos[j] as number) - (best.g.pattern[j] as number);
  }
  return records.filter((_, k) => !removed.has(k));
}

/** Per label: positives and rate before → after, and why its positives were or were not deleted. */
function targetRatioDetails(
  before: readonly DataRecord[],
  after: readonly DataRecord[],
  names: readonly string[],
  ratio: number,
): string[] {
  const width = Math.max(...names.map(displayWidth));
  return names.map((name, j) => {
    const p0 = positiveCount(before, j);
    const p1 = positiveCount(after, j);
    const label = name + " ".repeat(width - displayWidth(name));
    if (p0 === 0) return `${label}  no positive row: no deletion brings it nearer the target`;
    const rates = `${p0} -> ${p1} positives, ${percent(p0, before.length)}% -> ${percent(p1, after.length)}%`;
    const why =
      p0 / before.length < ratio
        ? `below the target at the start: none of its positive rows deleted`
        : `above the target at the start: ${p0 - p1} positive row${p0 - p1 === 1 ? "" : "s"} deleted`;
    return `${label}  ${rates} (${why})`;
  });
}
