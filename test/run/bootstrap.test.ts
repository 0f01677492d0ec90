import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  addBootstrapIntervals,
  bootstrapDraws,
  CI_METRICS,
  percentile,
  percentileInterval,
  resampleCounts,
} from "../../src/run/bootstrap.js";
import { evaluate } from "../../src/run/metrics.js";
import { syntheticEval } from "../train/synthetic-eval.js";

const close = (a: number | null, b: number | null, msg: string) => {
  if (a === null || b === null || Number.isNaN(a) || Number.isNaN(b)) {
    assert.equal(a === null || Number.isNaN(a), b === null || Number.isNaN(b), msg);
    return;
  }
  assert.ok(Math.abs(a - b) < 1e-12, `${msg}: ${a} vs ${b}`);
};

describe("bootstrap intervals", () => {
  test("every resample's metrics equal evaluate() on the resampled rows", () => {
    const { probs, labels, names } = syntheticEval(120, 1);
    const tuned = [0.4, 0.35, 0.3];
    const at05 = names.map(() => 0.5);
    const draws = bootstrapDraws(probs, labels, names, [at05, tuned], { resamples: 15, seed: 7 });
    let r = 0;
    for (const w of resampleCounts(probs.length, 15, 7)) {
      const rows = [...w].flatMap((c, i) => Array.from({ length: c }, () => i));
      const p = rows.map((i) => probs[i]);
      const t = rows.map((i) => labels[i]);
      for (const [s, ths] of [at05, tuned].entries()) {
        const full = evaluate(p, t, names, ths);
        const d = draws[s];
        for (const m of CI_METRICS) {
          for (const l of names) close(d.perLabel[l][m][r], full.perLabel[l][m], `r${r} ${l} ${m}`);
          close(d.micro[m][r], full.micro[m], `r${r} micro ${m}`);
          close(d.macro[m][r], full.macro[m], `r${r} macro ${m}`);
        }
      }
      r++;
    }
    assert.equal(r, 15);
  });

  test("the interval contains the full-sample value and shrinks as rows grow", () => {
    const width = (n: number) => {
      const { probs, labels, names } = syntheticEval(n, 3);
      const [rep] = addBootstrapIntervals([evaluate(probs, labels, names)], probs, labels, {
        resamples: 400,
        seed: 1,
      });
      for (const l of names) {
        for (const m of CI_METRICS) {
          const ci = rep.perLabel[l].ci95?.[m];
          const v = rep.perLabel[l][m];
          assert.ok(ci && v !== null, `${n} ${l} ${m} has an interval`);
          assert.ok(ci[0] <= v && v <= ci[1], `${n} ${l} ${m}: ${v} in [${ci}]`);
        }
      }
      for (const a of [rep.micro, rep.macro]) {
        for (const m of CI_METRICS) {
          const ci = a.ci95?.[m];
          assert.ok(ci && ci[0] <= (a[m] as number) && (a[m] as number) <= ci[1], `${n} average ${m}`);
        }
      }
      const ci = rep.perLabel.l0.ci95;
      return {
        f1: (ci?.f1?.[1] ?? 0) - (ci?.f1?.[0] ?? 0),
        auc: (ci?.rocAuc?.[1] ?? 0) - (ci?.rocAuc?.[0] ?? 0),
      };
    };
    const small = width(200);
    const large = width(3200);
    // 16× the rows: the interval should be about 4× narrower; ask for at least 2×.
    assert.ok(large.f1 * 2 < small.f1, `F1 width ${small.f1} → ${large.f1}`);
    assert.ok(large.auc * 2 < small.auc, `ROC-AUC width ${small.auc} → ${large.auc}`);
  });

  test("a fixed seed gives the same numbers; another seed other numbers", () => {
    const { probs, labels, names } = syntheticEval(300, 5);
    const run = (seed: number) =>
      addBootstrapIntervals([evaluate(probs, labels, names)], probs, labels, { resamples: 200, seed })[0];
    assert.deepEqual(run(11), run(11));
    assert.notDeepEqual(run(11).perLabel.l0.ci95, run(12).perLabel.l0.ci95);
    assert.deepEqual(run(11).bootstrap, { resamples: 200, seed: 11, level: 0.95, method: "percentile" });
  });

  test("--bootstrap 0 leaves the report without intervals", () => {
    const { probs, labels, names } = syntheticEval(50, 5);
    const rep = evaluate(probs, labels, names);
    const [out] = addBootstrapIntervals([rep], probs, labels, { resamples: 0 });
    assert.deepEqual(out, rep);
    assert.equal(out.perLabel.l0.ci95, undefined);
  });

  test("an undefined metric has a null interval", () => {
    // Label 1 has no positive row: ROC-AUC is undefined in every resample.
    const probs = [
      [0.9, 0.1],
      [0.2, 0.3],
      [0.7, 0.2],
      [0.1, 0.4],
    ];
    const labels = [
      [1, 0],
      [0, 0],
      [1, 0],
      [0, 0],
    ];
    const [rep] = addBootstrapIntervals([evaluate(probs, labels, ["a", "b"])], probs, labels, {
      resamples: 50,
    });
    assert.equal(rep.perLabel.b.ci95?.rocAuc, null);
    assert.deepEqual(rep.perLabel.b.ci95?.prAuc, [0, 0]);
  });

  test("percentiles interpolate like numpy", () => {
    // numpy.percentile([1, 2, 3, 4], [2.5, 97.5]) == [1.075, 3.925]
    close(percentile([4, 1, 3, 2], 2.5), 1.075, "2.5");
    close(percentile([4, 1, 3, 2], 97.5), 3.925, "97.5");
    assert.deepEqual(percentileInterval([Number.NaN, 5]), [5, 5]);
    assert.equal(percentileInterval([Number.NaN]), null);
  });
});
