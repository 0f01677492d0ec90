// `npm run bench:bootstrap`: cost of the bootstrap intervals (src/run/bootstrap.ts) on the
// issue's size, 1,000 resamples of 4,000 rows × 7 labels, at two threshold sets (0.5 and tuned, as
// train and eval write them), next to the naive way (copy the resampled rows and call evaluate())
// measured on a few resamples in the same run and scaled per resample.
// Results: one JSON line on stdout and bench/results/bootstrap.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { addBootstrapIntervals, resampleCounts } from "../src/run/bootstrap.js";
import { evaluate } from "../src/run/metrics.js";
import { syntheticEval } from "../test/train/synthetic-eval.js";

const rows = 4000;
const resamples = 1000;
const naiveResamples = 20;
const { probs, labels, names } = syntheticEval(rows, 1, [0.4, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01]);
const at05 = evaluate(probs, labels, names);
const tuned = evaluate(
  probs,
  labels,
  names,
  names.map(() => 0.4),
);

const time = (fn: () => void): number => {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
};

addBootstrapIntervals([at05, tuned], probs, labels, { resamples: 50 }); // warm-up
const fastRuns = [0, 1, 2].map(() =>
  time(() => addBootstrapIntervals([at05, tuned], probs, labels, { resamples, seed: 1 })),
);
const fast = Math.min(...fastRuns);
const naive = time(() => {
  for (const w of resampleCounts(rows, naiveResamples, 1)) {
    const idx = [...w].flatMap((c, i) => Array.from({ length: c }, () => i));
    const p = idx.map((i) => probs[i]);
    const t = idx.map((i) => labels[i]);
    evaluate(p, t, names);
    evaluate(p, t, names, tuned.thresholds);
  }
});
const result = {
  bench: "bootstrap",
  rows,
  labels: names.length,
  resamples,
  thresholdSets: 2,
  fastSeconds: Number(fast.toFixed(4)),
  naiveSecondsScaled: Number(((naive / naiveResamples) * resamples).toFixed(3)),
  speedup: Number((((naive / naiveResamples) * resamples) / fast).toFixed(1)),
  node: process.version,
};
console.log(JSON.stringify(result));
mkdirSync("bench/results", { recursive: true });
writeFileSync("bench/results/bootstrap.json", `${JSON.stringify(result, null, 2)}\n`);
