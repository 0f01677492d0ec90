// Krippendorff's alpha (nominal) against hand computations, with missing values.
import assert from "node:assert/strict";
import { test } from "node:test";
import { krippendorffAlphaNominal } from "../../src/label/alpha.js";

test("alpha on a small binary table with missing values matches a hand computation", () => {
  // Units × coders (null = no value):
  //   u1: 1 1 .    u2: 0 0 0    u3: 1 0 .    u4: 0 . .    u5: 1 1 0
  // u4 has one value: not pairable. Coincidences (each pair weighted 1/(m_u − 1)):
  //   u1 (m=2): o11 += 2                      u2 (m=3): o00 += 6 · 1/2 = 3
  //   u3 (m=2): o10 += 1, o01 += 1            u5 (m=3): o11 += 2 · 1/2 = 1, o10 += 2 · 1/2 = 1, o01 += 1
  //   o00 = 3, o11 = 3, o01 = o10 = 2 → n_0 = 5, n_1 = 5, n = 10
  //   α = 1 − (n − 1) · (o01 + o10) / (n_0·n_1 + n_1·n_0) = 1 − 9 · 4 / 50 = 0.28
  const r = krippendorffAlphaNominal([
    [1, 1, null],
    [0, 0, 0],
    [1, 0, null],
    [0, null, null],
    [1, 1, 0],
  ]);
  assert.equal(r.units, 4);
  assert.equal(r.pairable, 10);
  assert.ok(Math.abs(r.alpha - 0.28) < 1e-12, `alpha ${r.alpha}`);
});

test("alpha reproduces Krippendorff's published nominal example (4 coders, 12 units, missing values): 0.743", () => {
  // Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: α_nominal = 0.743.
  const A = [1, 2, 3, 3, 2, 1, 4, 1, 2, null, null, null];
  const B = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, null, 3];
  const C = [null, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, null];
  const D = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, null];
  const units = A.map((_, u) => [A[u], B[u], C[u], D[u]]);
  const r = krippendorffAlphaNominal(units);
  assert.equal(r.pairable, 40);
  assert.equal(r.alpha.toFixed(3), "0.743");
});

test("alpha: perfect agreement is 1, no pairable values or no variation is undefined (NaN)", () => {
  assert.equal(
    krippendorffAlphaNominal([
      [1, 1],
      [0, 0],
      ["x", "x", null],
    ]).alpha,
    1,
  );
  assert.ok(
    Number.isNaN(
      krippendorffAlphaNominal([
        [1, null],
        [null, 0],
      ]).alpha,
    ),
  );
  assert.ok(
    Number.isNaN(
      krippendorffAlphaNominal([
        [1, 1],
        [1, 1],
      ]).alpha,
    ),
  );
});
