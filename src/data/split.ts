// Train/test(/valid) split by multi-label iterative stratification (Sechidis, Tsoumakas and
// Vlahavas, "On the Stratification of Multi-Label Data", ECML PKDD 2011): the rarest label is
// distributed first, each of its rows going to the split that still needs most of that label, so
// every label keeps roughly its rate in every split. Split sizes are exact: test and valid get
// ceil(fraction × rows) rows (like scikit-learn's train_test_split), train gets the rest; a final
// pass of size-preserving swaps (refineBySwaps) evens out what the fixed sizes disturb.
import { percent } from "./format.js";
import type { DataRecord } from "./load.js";
import { createRng } from "./random.js";

export interface SplitOptions {
  /** Fraction of rows for the test split, in (0, 1). */
  test: number;
  /** Fraction for a validation split (default 0: none). */
  valid?: number;
  /** Default 42. */
  seed?: number;
}

export interface SplitResult {
  train: DataRecord[];
  test: DataRecord[];
  /** Empty when no validation fraction was asked for. */
  valid: DataRecord[];
}

export const SPLIT_NAMES = ["train", "test", "valid"] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

/** Rows per split for n rows: [train, test, valid]. */
export function splitSizes(n: number, test: number, valid = 0): [number, number, number] {
  for (const [name, f] of [
    ["test", test],
    ["valid", valid],
  ] as const) {
    if (!(f >= 0 && f < 1)) throw new Error(`--${name} must be a fraction in [0, 1), got ${f}`);
  }
  if (!(test > 0)) throw new Error(`--test must be a fraction in (0, 1), got ${test}`);
  if (test + valid >= 1)
    throw new Error(`test + valid fractions must leave rows for training (${test} + ${valid})`);
  // The small epsilon keeps float noise (0.7 * 100 = 70.00000000000001) from adding a row.
  const nTest = Math.ceil(test * n - 1e-9);
  const nValid = valid > 0 ? Math.ceil(valid * n - 1e-9) : 0;
  const nTrain = n - nTest - nValid;
  if (nTrain <= 0) throw new Error(`${n} rows are too few for test ${test} and valid ${valid}`);
  return [nTrain, nTest, nValid];
}

/**
 * Assigns each row to a subset. `labels[r]` is row r's 0/1 vector, `sizes[s]` the exact number of
 * rows subset s must get (summing to the row count). Returns the subset index of every row.
 */
export function iterativeStratification(
  labels: readonly number[][],
  sizes: readonly number[],
  seed: number,
): number[] {
  const n = labels.length;
  if (sizes.reduce((a, b) => a + b, 0) !== n) throw new Error("split sizes must add up to the row count");
  const L = labels[0]?.length ?? 0;
  const rng = createRng(seed);
  const K = sizes.length;
  // Rows are visited in a seeded random order, so different seeds give different splits.
  const order = rng.shuffle([...Array(n).keys()]);
  const assigned = new Array<number>(n).fill(-1);
  const capacity = [...sizes];
  // desired[s][j]: how many more positives of label j subset s should receive.
  const desired = sizes.map((size) =>
    Array.from(
      { length: L },
      (_, j) => (labels.reduce((c, row) => c + (row[j] === 1 ? 1 : 0), 0) * size) / n,
    ),
  );
  const remaining = Array.from({ length: L }, (_, j) =>
    labels.reduce((c, row) => c + (row[j] === 1 ? 1 : 0), 0),
  );
  const rowsOf = Array.from({ length: L }, (_, j) => order.filter((r) => labels[r]?.[j] === 1));
  const eps = 1e-9;

  // Among subsets with room left: the largest `primary`, then the largest remaining capacity,
  // then a random one.
  const choose = (primary: (s: number) => number): number => {
    let best: number[] = [];
    for (let s = 0; s < K; s++) {
      if ((capacity[s] as number) <= 0) continue;
      if (best.length === 0) {
        best = [s];
        continue;
      }
      const b = best[0] as number;
      const d = primary(s) - primary(b) || (capacity[s] as number) - (capacity[b] as number);
      if (d > eps) best = [s];
      else if (Math.abs(d) <= eps) best.push(s);
    }
    return best.length === 1 ? (best[0] as number) : rng.pick(best);
  };
  const assign = (r: number, s: number) => {
    assigned[r] = s;
    capacity[s] = (capacity[s] as number) - 1;
    const row = labels[r] as number[];
    for (let j = 0; j < L; j++) {
      if (row[j] !== 1) continue;
      (desired[s] as number[])[j] = ((desired[s] as number[])[j] as number) - 1;
      remaining[j] = (remaining[j] as number) - 1;
    }
  };

  for (;;) {
    // The label with the fewest (but some) unassigned positive rows; ties broken at random.
    let fewest = Number.POSITIVE_INFINITY;
    let candidates: number[] = [];
    for (let j = 0; j < L; j++) {
      const c = remaining[j] as number;
      if (c === 0) continue;
      if (c < fewest) {
        fewest = c;
        candidates = [j];
      } else if (c === fewest) candidates.push(j);
    }
    if (candidates.length === 0) break;
    const label = candidates.length === 1 ? (candidates[0] as number) : rng.pick(candidates);
    for (const r of rowsOf[label] as number[]) {
      if (assigned[r] !== -1) continue;
      assign(
        r,
        choose((s) => (desired[s] as number[])[label] as number),
      );
    }
  }
  // Rows with no positive label fill the remaining room.
  for (const r of order)
    if (assigned[r] === -1)
      assign(
        r,
        choose((s) => capacity[s] as number),
      );
  refineBySwaps(labels, assigned, sizes, order);
  return assigned;
}

/**
 * The greedy pass fixes split sizes exactly, so rows processed last (those of the most common
 * labels) go wherever room is left, and a common label's rate can drift a few points between
 * splits. Swapping rows between two splits keeps the sizes; this repeats the swap that most
 * reduces the chi-square distance between each split's label counts and its share of every
 * label, until no swap helps. Rows with the same label vector are interchangeable, so the
 * search runs over label patterns (few) rather than rows (many).
 */
function refineBySwaps(
  labels: readonly number[][],
  assigned: number[],
  sizes: readonly number[],
  order: number[],
): void {
  const n = labels.length;
  const L = labels[0]?.length ?? 0;
  const K = sizes.length;
  const totals = Array.from({ length: L }, (_, j) =>
    labels.reduce((c, row) => c + (row[j] === 1 ? 1 : 0), 0),
  );
  const target = sizes.map((size) => totals.map((t) => (t * size) / n));
  const counts = sizes.map(() => new Array<number>(L).fill(0));
  // groups[s]: pattern key → rows of split s with that label vector (in the seeded visiting order).
  const groups = sizes.map(() => new Map<string, number[]>());
  const patterns = new Map<string, readonly number[]>();
  for (const r of order) {
    const s = assigned[r] as number;
    const row = labels[r] as number[];
    const key = row.join("");
    patterns.set(key, row);
    const g = (groups[s] as Map<string, number[]>).get(key);
    if (g) g.push(r);
    else (groups[s] as Map<string, number[]>).set(key, [r]);
    for (let j = 0; j < L; j++)
      (counts[s] as number[])[j] = ((counts[s] as number[])[j] as number) + (row[j] as number);
  }
  // Chi-square term of one (split, label) cell with count c.
  const term = (s: number, j: number, c: number) => {
    const t = (target[s] as number[])[j] as number;
    return t > 0 ? (c - t) ** 2 / t : 0;
  };
  for (let iter = 0; iter < n; iter++) {
    let best: { s1: number; s2: number; p: string; q: string; gain: number } | undefined;
    for (let s1 = 0; s1 < K; s1++) {
      for (let s2 = s1 + 1; s2 < K; s2++) {
        const c1 = counts[s1] as number[];
        const c2 = counts[s2] as number[];
        for (const [p, rowsP] of groups[s1] as Map<string, number[]>) {
          if (rowsP.length === 0) continue;
          const vp = patterns.get(p) as readonly number[];
          for (const [q, rowsQ] of groups[s2] as Map<string, number[]>) {
            if (rowsQ.length === 0 || p === q) continue;
            const vq = patterns.get(q) as readonly number[];
            // Moving a p-row from s1 to s2 and a q-row from s2 to s1.
            let gain = 0;
            for (let j = 0; j < L; j++) {
              const d = (vq[j] as number) - (vp[j] as number);
              if (d === 0) continue;
              const a = c1[j] as number;
              const b = c2[j] as number;
              gain += term(s1, j, a) + term(s2, j, b) - term(s1, j, a + d) - term(s2, j, b - d);
            }
            if (gain > 1e-9 && (!best || gain > best.gain + 1e-12)) best = { s1, s2, p, q, gain };
          }
        }
      }
    }
    if (!best) return;
    const { s1, s2, p, q } = best;
    const g1 = groups[s1] as Map<string, number[]>;
    const g2 = groups[s2] as Map<string, number[]>;
    const a = (g1.get(p) as number[]).pop() as number;
    const b = (g2.get(q) as number[]).pop() as number;
    assigned[a] = s2;
    assigned[b] = s1;
    const into2 = g2.get(p);
    if (into2) into2.push(a);
    else g2.set(p, [a]);
    const into1 = g1.get(q);
    if (into1) into1.push(b);
    else g1.set(q, [b]);
    const vp = patterns.get(p) as readonly number[];
    const vq = patterns.get(q) as readonly number[];
    for (let j = 0; j < L; j++) {
      const d = (vq[j] as number) - (vp[j] as number);
      (counts[s1] as number[])[j] = ((counts[s1] as number[])[j] as number) + d;
      (counts[s2] as number[])[j] = ((counts[s2] as number[])[j] as number) - d;
    }
  }
}

/** Splits records into train/test(/valid), stratified on all labels; deterministic per seed. */
export function split(records: readonly DataRecord[], options: SplitOptions): SplitResult {
  const sizes = splitSizes(records.length, options.test, options.valid ?? 0);
  const assignment = iterativeStratification(
    records.map((r) => r.labels),
    sizes,
    options.seed ?? 42,
  );
  const out: SplitResult = { train: [], test: [], valid: [] };
  // Keep the input order inside each split.
  records.forEach((r, k) => {
    out[SPLIT_NAMES[assignment[k] as number] as SplitName].push(r);
  });
  return out;
}

/** Per-split label rates as a table: one row per label, "rate% (count)" per split. */
export function splitRateTable(
  result: SplitResult,
  labels: readonly string[],
): { headers: string[]; rows: string[][] } {
  const names = SPLIT_NAMES.filter((s) => s !== "valid" || result.valid.length > 0);
  const headers = ["label", ...names.map((s) => `${s} (${result[s].length})`)];
  const rows = labels.map((label, j) => [
    label,
    ...names.map((s) => {
      const pos = result[s].filter((r) => r.labels[j] === 1).length;
      return `${percent(pos, result[s].length)}% (${pos})`;
    }),
  ]);
  return { headers, rows };
}
