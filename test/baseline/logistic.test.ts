import assert from "node:assert/strict";
import { test } from "node:test";
import { minimizeLbfgs } from "../../src/baseline/lbfgs.js";
import {
  balancedClassWeights,
  fitLogistic,
  fitLogisticMany,
  logisticLossGrad,
  predictLogistic,
} from "../../src/baseline/logistic.js";
import { CsrBuilder, selectRows } from "../../src/baseline/sparse.js";

/** A small random sparse matrix (deterministic). */
function randomCsr(rows: number, cols: number, seed: number) {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const b = new CsrBuilder(cols);
  for (let i = 0; i < rows; i++) {
    const c: number[] = [];
    const v: number[] = [];
    for (let j = 0; j < cols; j++) {
      if (rand() < 0.4) {
        c.push(j);
        v.push(rand() * 2 - 1);
      }
    }
    b.push(c, v);
  }
  return { X: b.finish(), rand };
}

test("logistic loss gradient matches central finite differences (weights and intercept)", () => {
  const { X, rand } = randomCsr(12, 7, 3);
  const y = Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? 1 : 0));
  const sw = Array.from({ length: 12 }, () => 0.5 + rand());
  const p = Float64Array.from({ length: 8 }, () => rand() * 4 - 2);
  const g = new Float64Array(8);
  logisticLossGrad(X, y, sw, 0.7, p, g);
  const h = 1e-6;
  for (let k = 0; k < 8; k++) {
    const up = Float64Array.from(p);
    const dn = Float64Array.from(p);
    up[k] += h;
    dn[k] -= h;
    const scratch = new Float64Array(8);
    const fd =
      (logisticLossGrad(X, y, sw, 0.7, up, scratch) - logisticLossGrad(X, y, sw, 0.7, dn, scratch)) / (2 * h);
    assert.ok(Math.abs(fd - g[k]) < 1e-6 * Math.max(1, Math.abs(fd)), `∂f/∂p${k}: ${g[k]} vs ${fd}`);
  }
});

test("the intercept is not penalised: a constant feature-free problem fits the weighted base rate", () => {
  const X = new CsrBuilder(3);
  for (let i = 0; i < 10; i++) X.push([], []);
  const y = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
  const fit = fitLogistic(X.finish(), y, { C: 1e-6, tol: 1e-10 });
  // With no features the optimum is the log-odds of the base rate, whatever C is.
  assert.ok(Math.abs(fit.intercept - Math.log(3 / 7)) < 1e-6, `intercept ${fit.intercept}`);
  const [w0, w1] = balancedClassWeights(y);
  assert.deepEqual([w0, w1], [10 / 14, 10 / 6]);
  const bal = fitLogistic(X.finish(), y, { C: 1, tol: 1e-10, sampleWeight: y.map((v) => (v ? w1 : w0)) });
  assert.ok(Math.abs(bal.intercept) < 1e-6, "balanced weights make the classes even");
});

test("L-BFGS minimises the Rosenbrock function to its minimum (1, 1)", () => {
  const r = minimizeLbfgs(
    (x, g) => {
      const [a, b] = x;
      g[0] = -2 * (1 - a) - 400 * a * (b - a * a);
      g[1] = 200 * (b - a * a);
      return (1 - a) ** 2 + 100 * (b - a * a) ** 2;
    },
    Float64Array.from([-1.2, 1]),
    { gtol: 1e-8, ftol: 0 },
  );
  assert.ok(r.converged, r.reason);
  assert.ok(Math.abs(r.x[0] - 1) < 1e-6 && Math.abs(r.x[1] - 1) < 1e-6, `${r.x}`);
});

test("a separable problem is fitted and predicted; selectRows keeps rows in the order asked", () => {
  const { X } = randomCsr(40, 5, 11);
  const y = Array.from({ length: 40 }, (_, i) => (X.data[X.indptr[i]] > 0 ? 1 : 0));
  const fit = fitLogistic(X, y, { C: 10 });
  assert.ok(fit.converged);
  const p = predictLogistic(X, fit.coef, fit.intercept);
  const acc = y.filter((v, i) => (p[i] >= 0.5 ? 1 : 0) === v).length / y.length;
  assert.ok(acc > 0.8, `training accuracy ${acc}`);
  const sub = selectRows(X, [3, 1, 3]);
  const ps = predictLogistic(sub, fit.coef, fit.intercept);
  assert.deepEqual([...ps], [p[3], p[1], p[3]]);
});

test("labels fitted together (four per pass over X) give exactly their fits alone", () => {
  const { X, rand } = randomCsr(60, 9, 5);
  const ys = [0.2, 0.3, 0.5, 0.6, 0.7].map((q) => Array.from({ length: 60 }, () => (rand() < q ? 1 : 0)));
  const sws = ys.map((y) => {
    const [w0, w1] = balancedClassWeights(y);
    return y.map((v) => (v ? w1 : w0));
  });
  const together = fitLogisticMany(X, ys, { C: 2, sampleWeights: sws });
  ys.forEach((y, j) => {
    assert.deepEqual(together[j], fitLogistic(X, y, { C: 2, sampleWeight: sws[j] }));
  });
});
