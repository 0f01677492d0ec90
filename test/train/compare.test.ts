import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { comparePredictions, compareRuns, formatComparison } from "../../src/report/compare-runs.js";
import type { EvalPrediction } from "../../src/report/run.js";
import { addBootstrapIntervals, CI_METRICS } from "../../src/run/bootstrap.js";
import { evaluate } from "../../src/run/metrics.js";
import { pairedBootstrap } from "../../src/train/compare.js";
import { writeSyntheticRun } from "../report/synthetic-run.js";
import { syntheticEval, twoRecipes } from "./synthetic-eval.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** B: the same rows scored by a model with a clearer signal (A's scores pulled towards the truth). */
function sharperRun(probs: number[][], labels: number[][], pull: number): number[][] {
  return probs.map((row, i) => row.map((p, j) => (1 - pull) * p + pull * (labels[i][j] as number)));
}

describe("paired bootstrap", () => {
  test("a run compared with itself differs by exactly 0", () => {
    const { probs, labels, names } = syntheticEval(300, 2);
    const run = { probs, thresholds: [0.4, 0.5, 0.3] };
    const c = pairedBootstrap(run, run, labels, names, { resamples: 300, seed: 3 });
    for (const p of [...Object.values(c.perLabel), c.micro, c.macro]) {
      for (const m of CI_METRICS) {
        assert.equal(p[m].diff, 0);
        assert.deepEqual(p[m].ci95, [0, 0]);
        assert.equal(p[m].bBetter, 0);
        assert.equal(p[m].ties, 1);
      }
    }
  });

  test("a clearly better run wins in nearly every resample; the paired interval excludes 0", () => {
    const { probs, labels, names } = syntheticEval(400, 4);
    const a = { probs, thresholds: names.map(() => 0.5) };
    const b = { probs: sharperRun(probs, labels, 0.3), thresholds: names.map(() => 0.5) };
    const c = pairedBootstrap(a, b, labels, names, { resamples: 500, seed: 1 });
    const auc = c.macro.rocAuc;
    assert.ok((auc.diff as number) > 0);
    assert.ok((auc.ci95 as [number, number])[0] > 0, `interval ${auc.ci95}`);
    assert.ok((auc.bBetter as number) > 0.99);
    // Swapping the runs flips the sign.
    const back = pairedBootstrap(b, a, labels, names, { resamples: 500, seed: 1 });
    assert.equal(back.macro.rocAuc.diff, -(auc.diff as number));
    assert.ok((back.macro.rocAuc.bBetter as number) < 0.01);
  });

  test("README example: overlapping intervals, and what the paired comparison says", () => {
    const f = (x: number | null) => (x === null ? "–" : x.toFixed(3));
    const example = (seed: number) => {
      const { labels, a, b, names, thresholds } = twoRecipes(seed);
      const [ea] = addBootstrapIntervals([evaluate(a, labels, names, thresholds)], a, labels);
      const [eb] = addBootstrapIntervals([evaluate(b, labels, names, thresholds)], b, labels);
      const c = pairedBootstrap({ probs: a, thresholds }, { probs: b, thresholds }, labels, names);
      const ciA = ea.perLabel.obscene.ci95?.f1 as [number, number];
      const ciB = eb.perLabel.obscene.ci95?.f1 as [number, number];
      assert.ok(ciA[1] > ciB[0], "the two runs' own F1 intervals overlap");
      const p = c.perLabel.obscene.f1;
      return [
        f(ea.perLabel.obscene.f1),
        `${f(ciA[0])}–${f(ciA[1])}`,
        f(eb.perLabel.obscene.f1),
        `${f(ciB[0])}–${f(ciB[1])}`,
        f(p.diff),
        `${f(p.ci95?.[0] ?? null)}–${f(p.ci95?.[1] ?? null)}`,
        f(p.bBetter),
      ];
    };
    // The numbers quoted in README.md / README.ja.md ("How sure is a score?").
    assert.deepEqual(example(1), [
      "0.654",
      "0.586–0.712",
      "0.697",
      "0.636–0.753",
      "0.042",
      "-0.011–0.102",
      "0.930",
    ]);
    assert.deepEqual(example(5), [
      "0.667",
      "0.598–0.732",
      "0.727",
      "0.664–0.788",
      "0.061",
      "0.010–0.109",
      "0.992",
    ]);
  });
});

function predictions(
  ids: string[],
  probs: number[][],
  truth: number[][],
  labels: string[],
): EvalPrediction[] {
  return ids.map((id, i) => ({
    id,
    text: id,
    truth: Object.fromEntries(labels.map((l, j) => [l, truth[i][j] as number])),
    probs: Object.fromEntries(labels.map((l, j) => [l, probs[i][j] as number])),
  }));
}

describe("pairing runs by row id", () => {
  const { probs, labels, names } = syntheticEval(60, 8);
  const ids = probs.map((_, i) => `r${i}`);
  const thresholds = names.map(() => 0.5);
  const run = (dir: string, rows: EvalPrediction[]) => ({
    dir,
    labels: names,
    thresholds,
    predictions: rows,
  });

  test("same rows in another order pair up exactly, without warnings", () => {
    const a = predictions(ids, probs, labels, names);
    const r = comparePredictions(run("A", a), run("B", [...a].reverse()), { resamples: 50 });
    assert.deepEqual(r.warnings, []);
    assert.equal(r.rows, 60);
    assert.equal(r.comparison.macro.f1.diff, 0);
  });

  test("different rows: a clear warning and only the common rows", () => {
    const a = predictions(ids, probs, labels, names);
    const b = predictions(ids.slice(10), probs.slice(10), labels.slice(10), names);
    const r = comparePredictions(run("A", a), run("B", b), { resamples: 50 });
    assert.equal(r.rows, 50);
    assert.match(r.warnings.join("\n"), /evaluated on different rows: A scored 60, B 50, 50 in common/);
    assert.match(formatComparison(r), /WARNING: the runs were evaluated on different rows/);
  });

  test("no common row, or duplicate ids, is an error", () => {
    const a = predictions(ids, probs, labels, names);
    const other = predictions(
      ids.map((i) => `x${i}`),
      probs,
      labels,
      names,
    );
    assert.throws(() => comparePredictions(run("A", a), run("B", other)), /no row id in common/);
    assert.throws(() => comparePredictions(run("A", [...a, a[0]]), run("B", a)), /appears twice/);
  });

  test("a shared row with another truth is reported", () => {
    const a = predictions(ids, probs, labels, names);
    const flipped = labels.map((row, i) => (i === 3 ? row.map((y) => 1 - y) : row));
    const b = predictions(ids, probs, flipped, names);
    const r = comparePredictions(run("A", a), run("B", b), { resamples: 20 });
    assert.match(r.warnings.join("\n"), /1 shared rows have a different truth .*id r3/);
  });
});

describe("toxlora compare", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "toxlora-compare-"));
    await writeSyntheticRun(join(dir, "a"), { seed: 7 });
    await writeSyntheticRun(join(dir, "b"), { seed: 7 });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("compareRuns warns when the manifests name different data", async () => {
    // Same rows and scores; only B's manifest hash differs.
    const file = join(dir, "b", "manifest.json");
    const m = JSON.parse(await readFile(file, "utf8"));
    m.files[0].sha256 = "0".repeat(64);
    await writeFile(file, JSON.stringify(m));
    const r = await compareRuns(join(dir, "a"), join(dir, "b"), { resamples: 100 });
    assert.equal(r.comparison.macro.f1.diff, 0);
    assert.match(r.warnings.join("\n"), /made from different data \(manifest sha256\)/);
  });

  test("the CLI prints the paired table", async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ["--import", "tsx", "src/cli/main.ts", "compare", "--run", join(dir, "a"), "--run", join(dir, "a")],
        { cwd: ROOT },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    );
    assert.match(out, /90 rows scored by both; 1000 paired bootstrap resamples \(seed 42\)/);
    assert.match(out, /obscene\s+f1\s+\d\.\d{3}\s+\d\.\d{3}\s+\+0\.000\s+\[\+0\.000, \+0\.000\]\s+0\.000/);
  });
});
