// A seeded synthetic evaluation set for the bootstrap, comparison and calibration tests and bench.
import { createRng } from "../../src/data/random.js";

/**
 * A synthetic evaluation set: label j has positive rate `rates[j]`; scores are noisy and rounded
 * to 2 decimals so that ties occur (the bootstrap must group them as sklearn does).
 */
export function syntheticEval(n: number, seed: number, rates = [0.3, 0.1, 0.05]) {
  const rng = createRng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const labels = Array.from({ length: n }, () => rates.map((r) => (rng.next() < r ? 1 : 0)));
  const probs = labels.map((row) =>
    row.map((y) => Math.round(100 / (1 + Math.exp(-(1.5 * y - 1 + gauss())))) / 100),
  );
  return { probs, labels, names: rates.map((_, j) => `l${j}`) };
}

/**
 * Two "recipes" scoring the same 366 rows of one label (the prototype's test size, 30% positive):
 * they share a per-row difficulty (the same hard rows fool both) and B separates the classes a
 * little better. Used for the README's example of overlapping intervals.
 */
export function twoRecipes(seed: number) {
  const rng = createRng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  const labels = Array.from({ length: 366 }, () => [rng.next() < 0.3 ? 1 : 0]);
  const difficulty = labels.map(() => gauss());
  const a = labels.map((r, i) => [
    sigmoid(1.6 * (r[0] as number) - 1.2 + (difficulty[i] as number) + 0.6 * gauss()),
  ]);
  const b = labels.map((r, i) => [
    sigmoid(1.9 * (r[0] as number) - 1.3 + (difficulty[i] as number) + 0.6 * gauss()),
  ]);
  return { labels, a, b, names: ["obscene"], thresholds: [0.4] };
}
