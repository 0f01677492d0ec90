import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createRng } from "../../src/data/random.js";
import {
  applyCalibration,
  ECE_BINS,
  expectedCalibrationError,
  fitCalibration,
  logLoss,
  reliabilityBins,
} from "../../src/run/calibration.js";
import { rocAucScore } from "../../src/run/metrics.js";

/**
 * Rows whose truth is drawn from σ(z) for a latent logit z, scored by a model that reports
 * σ(k · z + shift): k > 1 is over-confident, shift ≠ 0 is biased.
 */
function miscalibrated(n: number, seed: number, k: number, shift = 0) {
  const rng = createRng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const z = Array.from({ length: n }, () => 1.5 * gauss() - 0.8);
  const truth = z.map((v) => (rng.next() < sig(v) ? 1 : 0));
  const probs = z.map((v) => sig(k * v + shift));
  return { probs, truth };
}

describe("reliability and ECE", () => {
  test(`ECE with ${ECE_BINS} equal-width bins agrees with a hand computation`, () => {
    const probs = [0.05, 0.15, 0.15, 0.85, 0.95, 1.0];
    const truth = [0, 0, 1, 1, 1, 1];
    // Bins [0,.1): {0.05}/0 → gap 0.05; [.1,.2): {0.15, 0.15}/{0, 1} → |0.15 − 0.5| = 0.35;
    // [.8,.9): {0.85}/1 → 0.15; [.9,1]: {0.95, 1.0}/{1, 1} → |0.975 − 1| = 0.025 (1.0 is in the last bin).
    const expected = (1 * 0.05 + 2 * 0.35 + 1 * 0.15 + 2 * 0.025) / 6;
    assert.ok(Math.abs(expectedCalibrationError(probs, truth) - expected) < 1e-12);
    const bins = reliabilityBins(probs, truth);
    assert.equal(bins.length, 10);
    assert.deepEqual(
      bins.map((b) => b.count),
      [1, 2, 0, 0, 0, 0, 0, 0, 1, 2],
    );
    assert.ok(Number.isNaN(bins[2].meanProb));
    // A perfectly calibrated bin has no gap; no rows give 0.
    assert.equal(expectedCalibrationError([0.25, 0.25, 0.25, 0.25], [1, 0, 0, 0]), 0);
    assert.equal(expectedCalibrationError([], []), 0);
  });
});

describe("scaling", () => {
  test("temperature scaling lowers the log-loss of an over-confident model and keeps the ranking", () => {
    const valid = miscalibrated(2000, 1, 3);
    const cal = fitCalibration(
      valid.probs.map((p) => [p]),
      valid.truth.map((y) => [y]),
      ["x"],
      "temperature",
    );
    assert.equal(cal.bias[0], 0);
    // The model multiplied the logit by 3: the fitted scale 1/T should undo it.
    assert.ok(Math.abs((cal.scale[0] as number) - 1 / 3) < 0.05, `scale ${cal.scale[0]}`);
    assert.ok((cal.logLoss.after[0] as number) < (cal.logLoss.before[0] as number) - 0.05, `${cal.logLoss}`);
    assert.ok((cal.ece.after[0] as number) < (cal.ece.before[0] as number));
    // On new rows from the same model: lower log-loss and ECE, identical ROC-AUC.
    const test = miscalibrated(2000, 2, 3);
    const calibrated = applyCalibration(
      test.probs.map((p) => [p]),
      cal,
    ).map((r) => r[0] as number);
    assert.ok(logLoss(calibrated, test.truth) < logLoss(test.probs, test.truth));
    assert.ok(
      expectedCalibrationError(calibrated, test.truth) < expectedCalibrationError(test.probs, test.truth),
    );
    assert.equal(rocAucScore(calibrated, test.truth), rocAucScore(test.probs, test.truth));
  });

  test("Platt scaling corrects a biased model and keeps the ranking", () => {
    const valid = miscalibrated(2000, 3, 1, 2);
    const cal = fitCalibration(
      valid.probs.map((p) => [p]),
      valid.truth.map((y) => [y]),
      ["x"],
      "platt",
    );
    assert.ok(Math.abs((cal.bias[0] as number) + 2) < 0.3, `bias ${cal.bias[0]}`);
    assert.ok((cal.scale[0] as number) > 0);
    assert.ok((cal.logLoss.after[0] as number) < (cal.logLoss.before[0] as number));
    const calibrated = applyCalibration(
      valid.probs.map((p) => [p]),
      cal,
    ).map((r) => r[0] as number);
    assert.equal(rocAucScore(calibrated, valid.truth), rocAucScore(valid.probs, valid.truth));
  });

  test("a label with one class on validation is left as is and named", () => {
    const cal = fitCalibration(
      [
        [0.9, 0.2],
        [0.1, 0.3],
      ],
      [
        [1, 0],
        [0, 0],
      ],
      ["a", "b"],
      "temperature",
    );
    assert.equal(cal.scale[1], 1);
    assert.match(cal.notes.join(), /b: one class only/);
    assert.throws(() => fitCalibration([], [], ["a"], "platt"), /validation rows/);
  });
});
