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
