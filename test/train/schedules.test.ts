import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  isScheduleKind,
  lrAt,
  lrMultiplier,
  type ScheduleOptions,
  warmupStepsFromRatio,
} from "../../src/train/schedules.js";

const near = (actual: number, expected: number): void => {
  assert.ok(Math.abs(actual - expected) < 1e-12, `expected ${expected}, got ${actual}`);
};

// Values below are derived by hand from transformers' lambdas (see the table in schedules.ts).
describe("learning-rate schedules", () => {
  test("linear with warmup (T = 10, W = 2)", () => {
    const o: ScheduleOptions = { base: 1, totalSteps: 10, warmupSteps: 2, kind: "linear" };
    // warmup: s / W
    assert.equal(lrAt(0, o), 0);
    assert.equal(lrAt(1, o), 0.5);
    // decay: (T − s) / (T − W) = (10 − s) / 8
    assert.equal(lrAt(2, o), 1);
    assert.equal(lrAt(6, o), 0.5);
    assert.equal(lrAt(9, o), 0.125);
    assert.equal(lrAt(10, o), 0);
    // past the end: max(0, negative) = 0
    assert.equal(lrAt(12, o), 0);
    // base scales everything
    assert.equal(lrAt(6, { ...o, base: 1e-4 }), 0.5e-4);
  });

  test("linear without warmup starts at base", () => {
    const o: ScheduleOptions = { base: 2, totalSteps: 4, warmupSteps: 0, kind: "linear" };
    // (4 − s) / max(1, 4) → 1, 0.75, 0.5, 0.25
    assert.deepEqual(
      [0, 1, 2, 3].map((s) => lrAt(s, o)),
      [2, 1.5, 1, 0.5],
    );
  });

  test("cosine with warmup (T = 10, W = 2, half a cycle)", () => {
    const o: ScheduleOptions = { base: 1, totalSteps: 10, warmupSteps: 2, kind: "cosine" };
    assert.equal(lrAt(1, o), 0.5);
    // progress p = (s − 2) / 8; value ½(1 + cos(π·2·0.5·p)) = ½(1 + cos(πp))
    near(lrAt(2, o), 1); // p = 0
    near(lrAt(4, o), 0.5 + Math.SQRT2 / 4); // p = ¼: ½(1 + √2/2)
    near(lrAt(6, o), 0.5); // p = ½: cos(π/2) = 0
    near(lrAt(8, o), 0.5 - Math.SQRT2 / 4); // p = ¾
    near(lrAt(10, o), 0); // p = 1: cos(π) = −1
  });

  test("cosine with one full cycle goes down and back up", () => {
    const o: ScheduleOptions = { base: 1, totalSteps: 8, warmupSteps: 0, kind: "cosine", numCycles: 1 };
    // ½(1 + cos(2πp)), p = s / 8
    near(lrAt(0, o), 1);
    near(lrAt(2, o), 0.5);
    near(lrAt(4, o), 0);
    near(lrAt(6, o), 0.5);
    near(lrAt(8, o), 1);
  });

  test("inverse square root, timescale = warmup by default", () => {
    const o: ScheduleOptions = { base: 1, totalSteps: 100, warmupSteps: 4, kind: "inverse_sqrt" };
    assert.equal(lrAt(1, o), 0.25);
    assert.equal(lrAt(3, o), 0.75);
    // τ = 4, shift = τ − W = 0: 1 / √(s / 4)
    assert.equal(lrAt(4, o), 1);
    assert.equal(lrAt(16, o), 0.5); // 1/√4
    assert.equal(lrAt(64, o), 0.25); // 1/√16
    // totalSteps does not matter for this schedule
    assert.equal(lrAt(64, { ...o, totalSteps: 5 }), 0.25);
  });

  test("inverse square root without warmup uses timescale 10 000", () => {
    const o: ScheduleOptions = { base: 1, totalSteps: 1, warmupSteps: 0, kind: "inverse_sqrt" };
    // 1 / √((s + 10000) / 10000)
    assert.equal(lrAt(0, o), 1);
    assert.equal(lrAt(30_000, o), 0.5);
    assert.equal(lrAt(150_000, o), 0.25);
  });

  test("inverse square root with an explicit timescale", () => {
    const o: ScheduleOptions = { base: 1, totalSteps: 1, warmupSteps: 4, kind: "inverse_sqrt", timescale: 9 };
    // shift = 9 − 4 = 5: 1 / √((s + 5) / 9)
    assert.equal(lrAt(4, o), 1);
    assert.equal(lrAt(31, o), 0.5); // 36 / 9 = 4
    assert.throws(() => lrAt(4, { ...o, timescale: 0 }), /timescale must be positive/);
  });

  test("constant with warmup", () => {
    const o: ScheduleOptions = { base: 3, totalSteps: 10, warmupSteps: 3, kind: "constant" };
    assert.equal(lrAt(0, o), 0);
    near(lrAt(1, o), 1); // 3 · 1/3
    assert.equal(lrAt(3, o), 3);
    assert.equal(lrAt(1000, o), 3);
    assert.equal(lrMultiplier(0, { ...o, warmupSteps: 0 }), 1);
  });

  test("the prototype's recipe: 852 rows, batch 8, warmup ratio 0.2", () => {
    const total = Math.ceil(852 / 8); // 107 updates in one epoch
    // ceil(107 × 0.2) = ceil(21.400000000000002) = 22, as transformers computes it
    const W = warmupStepsFromRatio(total, 0.2);
    assert.equal(W, 22);
    const o: ScheduleOptions = { base: 1e-4, totalSteps: total, warmupSteps: W, kind: "inverse_sqrt" };
    assert.equal(lrAt(0, o), 0);
    near(lrAt(11, o), 0.5e-4);
    near(lrAt(22, o), 1e-4);
    near(lrAt(88, o), 0.5e-4); // 1 / √(88/22) = ½
  });

  test("warmup ratio rounds up like Python's math.ceil on the same float", () => {
    // 100 × 0.07 = 7.000000000000001 in IEEE doubles (also in Python) → 8.
    assert.equal(warmupStepsFromRatio(100, 0.07), 8);
    assert.equal(warmupStepsFromRatio(100, 0), 0);
    assert.equal(warmupStepsFromRatio(10, 0.1), 1);
    assert.throws(() => warmupStepsFromRatio(10, 1.5), /warmup ratio/);
  });

  test("rejects bad arguments", () => {
    const o: ScheduleOptions = { base: 1, totalSteps: 10, warmupSteps: 2, kind: "linear" };
    assert.throws(() => lrAt(-1, o), /step must be a non-negative integer/);
    assert.throws(() => lrAt(1.5, o), /step must be a non-negative integer/);
    assert.throws(() => lrAt(3, { ...o, kind: "step" as never }), /unknown schedule kind: step/);
    assert.equal(isScheduleKind("cosine"), true);
    assert.equal(isScheduleKind("cosine_with_restarts"), false);
  });
});
