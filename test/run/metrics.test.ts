import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  averagePrecisionScore,
  confusionAt,
  evaluate,
  formatPrototypeTable,
  precisionRecallCurve,
  rocAucScore,
  rocCurve,
  scoresFromConfusion,
  tuneThreshold,
  tuneThresholds,
} from "../../src/run/metrics.js";

const close = (actual: number | null, expected: number, msg?: string): void => {
  assert.ok(actual !== null, msg ?? "value is null");
  assert.ok(Math.abs(actual - expected) < 1e-12, `${msg ?? ""} expected ${expected}, got ${actual}`);
};

// A fixed 10-row, 3-label evaluation set used by several tests.
// Label "a": positives score 0.9, 0.8, 0.6, 0.3; negatives 0.7, 0.4, 0.2, 0.1, 0.05, 0.55.
// Label "b": no positive row at all; every score below 0.5 (zero-division everywhere).
// Label "c": one positive row; every score is 0.2 (one big tie), so nothing is predicted.
const A_SCORES = [0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.05, 0.55];
const A_TRUTH = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0];
const B_SCORES = [0.1, 0.2, 0.3, 0.4, 0.45, 0.05, 0.15, 0.25, 0.35, 0.01];
const B_TRUTH = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const C_SCORES = Array.from({ length: 10 }, () => 0.2);
const C_TRUTH = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const PROBS = A_SCORES.map((a, i) => [a, B_SCORES[i] as number, C_SCORES[i] as number]);
const LABELS = A_TRUTH.map((a, i) => [a, B_TRUTH[i] as number, C_TRUTH[i] as number]);

describe("confusion table and threshold scores", () => {
  test("label a at 0.5 matches the hand-computed table", () => {
    // Predicted positive (>= 0.5): 0.9 0.8 0.6 (true) and 0.7 0.55 (false). 0.3 is a missed positive.
    const c = confusionAt(A_SCORES, A_TRUTH, 0.5);
    assert.deepEqual(c, { tn: 4, fp: 2, fn: 1, tp: 3 });
    const s = scoresFromConfusion(c);
    close(s.accuracy, 7 / 10); // (tp + tn) / n
    close(s.precision, 3 / 5); // tp / (tp + fp)
    close(s.recall, 3 / 4); // tp / (tp + fn)
    close(s.f1, 6 / 9); // 2tp / (2tp + fp + fn) = 2·0.6·0.75 / 1.35
  });

  test("threshold is inclusive (score >= threshold is positive)", () => {
    assert.deepEqual(confusionAt([0.5, 0.49], [1, 0], 0.5), { tn: 1, fp: 0, fn: 0, tp: 1 });
  });

  test("zero division gives 0, as scikit-learn", () => {
    // Nothing predicted and nothing true: precision, recall and F1 are 0/0 → 0; accuracy is 1.
    assert.deepEqual(scoresFromConfusion({ tn: 10, fp: 0, fn: 0, tp: 0 }), {
      accuracy: 1,
      precision: 0,
      recall: 0,
      f1: 0,
    });
    // Positives exist but none predicted: precision 0/0 → 0, recall 0/1 = 0.
    assert.deepEqual(scoresFromConfusion({ tn: 9, fp: 0, fn: 1, tp: 0 }), {
      accuracy: 0.9,
      precision: 0,
      recall: 0,
      f1: 0,
    });
    // Only false positives: precision 0/3, recall 0/0 → 0.
    assert.deepEqual(scoresFromConfusion({ tn: 0, fp: 3, fn: 0, tp: 0 }), {
      accuracy: 0,
      precision: 0,
      recall: 0,
      f1: 0,
    });
    // Empty table: everything 0, no NaN.
    assert.deepEqual(scoresFromConfusion({ tn: 0, fp: 0, fn: 0, tp: 0 }), {
      accuracy: 0,
      precision: 0,
      recall: 0,
      f1: 0,
    });
  });

  test("rejects non-binary truth and mismatched lengths", () => {
    assert.throws(() => confusionAt([0.1], [2], 0.5), /must be 0 or 1/);
    assert.throws(() => confusionAt([0.1, 0.2], [1], 0.5), /2 rows but truth has 1/);
    assert.throws(() => confusionAt([Number.NaN], [1], 0.5), /not a finite number/);
  });
});

describe("ROC-AUC", () => {
  test("no ties: fraction of (positive, negative) pairs ranked correctly", () => {
    // Positives vs 6 negatives: 0.9 beats 6, 0.8 beats 6, 0.6 beats 5 (not 0.7), 0.3 beats 3
    // (0.2, 0.1, 0.05) → 20 / 24.
    close(rocAucScore(A_SCORES, A_TRUTH), 20 / 24);
  });

  test("tied scores are one threshold (trapezoid, i.e. half credit)", () => {
    // scores 0.8 0.5 0.5 0.2, truth 1 1 0 0. Distinct thresholds give ROC points
    // (0,0) → (0,0.5) [≥0.8] → (0.5,1) [≥0.5, the tie] → (1,1) [≥0.2].
    // Area = 0 + 0.5·(0.5+1)/2 + 0.5·(1+1)/2 = 0.375 + 0.5 = 0.875
    // (= pairs: 2 + 1 + 0.5 for the tie, over 4).
    close(rocAucScore([0.8, 0.5, 0.5, 0.2], [1, 1, 0, 0]), 0.875);
    // All scores tied: a single diagonal segment, area 0.5.
    close(rocAucScore(C_SCORES, C_TRUTH), 0.5);
  });

  test("the scikit-learn documentation example", () => {
    // y_true 0 0 1 1, scores 0.1 0.4 0.35 0.8: pairs 0.35>0.1, 0.8>both → 3/4.
    close(rocAucScore([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
    const curve = rocCurve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]);
    assert.deepEqual(curve.fpr, [0, 0, 0.5, 0.5, 1]);
    assert.deepEqual(curve.tpr, [0, 0.5, 0.5, 1, 1]);
    assert.deepEqual(curve.thresholds, [Number.POSITIVE_INFINITY, 0.8, 0.4, 0.35, 0.1]);
  });

  test("rocCurve drops collinear points only when asked (default, as sklearn)", () => {
    // Truth 1 1 1 0 by descending scores: cumulative (fp,tp) = (0,1) (0,2) (0,3) (1,3):
    // (0,2) lies on the segment between its neighbours and is dropped.
    const scores = [0.9, 0.8, 0.7, 0.1];
    const truth = [1, 1, 1, 0];
    assert.deepEqual(rocCurve(scores, truth).thresholds, [Number.POSITIVE_INFINITY, 0.9, 0.7, 0.1]);
    assert.deepEqual(rocCurve(scores, truth, { dropIntermediate: false }).thresholds, [
      Number.POSITIVE_INFINITY,
      0.9,
      0.8,
      0.7,
      0.1,
    ]);
    close(rocAucScore(scores, truth), 1);
  });

  test("undefined with one class: NaN (null in reports)", () => {
    assert.ok(Number.isNaN(rocAucScore(B_SCORES, B_TRUTH)));
    assert.ok(Number.isNaN(rocAucScore([0.3, 0.4], [1, 1])));
    assert.ok(Number.isNaN(rocAucScore([], [])));
  });
});

describe("average precision (PR-AUC)", () => {
  test("hand-computed, no ties", () => {
    // Descending: 0.9 P, 0.8 P, 0.7 N, 0.6 P, 0.55 N, 0.4 N, 0.3 P, ...
    // Each positive adds ΔR = 1/4 at precision 1/1, 2/2, 3/4, 4/7:
    // AP = (1 + 1 + 3/4 + 4/7) / 4 = (93/28) / 4 = 93/112.
    close(averagePrecisionScore(A_SCORES, A_TRUTH), 93 / 112);
  });

  test("ties form one step, not interpolated", () => {
    // scores 0.8 0.5 0.5 0.2, truth 1 1 0 0: thresholds 0.8 (P=1, R=0.5), 0.5 (P=2/3, R=1), 0.2 (P=1/2, R=1)
    // AP = 0.5·1 + 0.5·2/3 + 0·1/2 = 5/6.
    close(averagePrecisionScore([0.8, 0.5, 0.5, 0.2], [1, 1, 0, 0]), 5 / 6);
    // One tie group containing 1 positive of 10: AP = 1 · (1/10).
    close(averagePrecisionScore(C_SCORES, C_TRUTH), 0.1);
  });

  test("the scikit-learn documentation example and curve", () => {
    const pr = precisionRecallCurve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]);
    // Thresholds increasing; precision/recall at score >= threshold, plus the final (P=1, R=0).
    assert.deepEqual(pr.thresholds, [0.1, 0.35, 0.4, 0.8]);
    assert.deepEqual(pr.recall, [1, 1, 0.5, 0.5, 0]);
    assert.deepEqual(pr.precision, [0.5, 2 / 3, 0.5, 1, 1]);
    // AP = (1 − 0.5)·1 [≥0.8] + (0.5 − 0.5)·0.5 [≥0.4] + (1 − 0.5)·2/3 [≥0.35] = 0.5 + 1/3.
    close(averagePrecisionScore([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 5 / 6);
  });

  test("no positive row: recall is 1 everywhere and AP is 0 (scikit-learn)", () => {
    const pr = precisionRecallCurve(B_SCORES, B_TRUTH);
    assert.ok(pr.recall.slice(0, -1).every((r) => r === 1));
    assert.equal(averagePrecisionScore(B_SCORES, B_TRUTH), 0);
    // All positives: precision 1 at every threshold → AP 1.
    close(averagePrecisionScore([0.2, 0.9], [1, 1]), 1);
  });
});

describe("threshold tuning", () => {
  test("picks the F1-maximising cut", () => {
    // Cuts of label a (≥ score: tp, fp, fn → F1): 0.9: 1,0,3 → 2/5; 0.8: 2,0,2 → 4/6; 0.7: 2,1,2 → 4/7;
    // 0.6: 3,1,1 → 6/8 = 0.75 (best); 0.55: 3,2,1 → 6/9; 0.4: 3,3,1 → 6/10; 0.3: 4,3,0 → 8/11; ...
    // The best interval (0.55, 0.6] does not hold 0.5, so the threshold is the cut's score 0.6.
    assert.deepEqual(tuneThreshold(A_SCORES, A_TRUTH), { threshold: 0.6, f1: 0.75 });
  });

  test("keeps 0.5 when 0.5 is inside an optimal interval", () => {
    // Cut ≥ 0.8 is perfect (F1 = 1) for every threshold in (0.3, 0.8], which contains 0.5.
    assert.deepEqual(tuneThreshold([0.8, 0.3], [1, 0]), { threshold: 0.5, f1: 1 });
  });

  test("ties: closest to 0.5 wins, then the lower", () => {
    // 0.9 P, 0.8 N, 0.7 N, 0.3 P, 0.1 N: cut 0.9 → tp1 fp0 fn1 → 2/3; cut 0.3 → tp2 fp2 fn0 → 4/6 = 2/3.
    // Tie; |0.3 − 0.5| = 0.2 < |0.9 − 0.5| = 0.4 → 0.3.
    assert.deepEqual(tuneThreshold([0.9, 0.8, 0.7, 0.3, 0.1], [1, 0, 0, 1, 0]), {
      threshold: 0.3,
      f1: 2 / 3,
    });
    // Same pattern with 0.75 and 0.25, both 0.25 away from 0.5 → the lower, 0.25.
    assert.deepEqual(tuneThreshold([0.75, 0.7, 0.6, 0.25, 0.1], [1, 0, 0, 1, 0]), {
      threshold: 0.25,
      f1: 2 / 3,
    });
  });

  test("no positive row or no row: 0.5", () => {
    assert.equal(tuneThreshold(B_SCORES, B_TRUTH).threshold, 0.5);
    assert.equal(tuneThreshold([0.9, 0.8], [0, 0]).threshold, 0.5);
    assert.equal(tuneThreshold([], []).threshold, 0.5);
  });

  test("per label over a matrix", () => {
    // a → 0.6 (above); b → 0.5 (no positive); c → the single tie group 0.2 (F1 = 2/(2+9) beats 0).
    assert.deepEqual(tuneThresholds(PROBS, LABELS), [0.6, 0.5, 0.2]);
  });
});

describe("evaluate and the prototype table", () => {
  const report = evaluate(PROBS, LABELS, ["a", "b", "c"]);

  test("per-label values", () => {
    assert.equal(report.rows, 10);
    assert.deepEqual(report.thresholds, [0.5, 0.5, 0.5]);
    const a = report.perLabel.a;
    assert.ok(a);
    assert.deepEqual([a.tn, a.fp, a.fn, a.tp, a.support], [4, 2, 1, 3, 4]);
    close(a.f1, 2 / 3);
    close(a.rocAuc, 20 / 24);
    close(a.prAuc, 93 / 112);
    const b = report.perLabel.b;
    assert.ok(b);
    assert.deepEqual([b.tn, b.fp, b.fn, b.tp], [10, 0, 0, 0]);
    assert.deepEqual([b.accuracy, b.precision, b.recall, b.f1, b.prAuc], [1, 0, 0, 0, 0]);
    assert.equal(b.rocAuc, null);
    const c = report.perLabel.c;
    assert.ok(c);
    assert.deepEqual([c.tn, c.fp, c.fn, c.tp], [9, 0, 1, 0]);
    assert.deepEqual([c.precision, c.recall, c.f1], [0, 0, 0]);
    close(c.accuracy, 0.9);
    close(c.rocAuc, 0.5);
    close(c.prAuc, 0.1);
  });

  test("micro averages", () => {
    // Summed counts: tp 3, fp 2, fn 1+0+1 = 2, tn 4+10+9 = 23.
    close(report.micro.accuracy, 26 / 30);
    close(report.micro.precision, 3 / 5);
    close(report.micro.recall, 3 / 5);
    close(report.micro.f1, 6 / 10);
    assert.equal(report.microF1, report.micro.f1);
    // Micro ROC-AUC over the 30 flattened cells: 5 positives (0.9 0.8 0.6 0.3 from a, 0.2 from c),
    // 25 negatives. Pairs won (+0.5 per tie): 0.9 → 25, 0.8 → 25, 0.6 → 24 (loses to 0.7),
    // 0.3 → 18 below (a: 0.2 0.1 0.05; b: 0.1 0.2 0.05 0.15 0.25 0.01; c: nine 0.2) + 0.5 (b's 0.3) = 18.5,
    // 0.2 → 6 below (a: 0.1 0.05; b: 0.1 0.05 0.15 0.01) + 11 ties·0.5 = 11.5. Total 104 / 125.
    close(report.micro.rocAuc, 104 / 125);
    // Micro AP: groups by descending score with (tp, fp): 0.9 (1,0) 0.8 (2,0) 0.7 (2,1) 0.6 (3,1) ...
    // 0.3 (4,7) ... 0.2 (5,19). Recall rises by 1/5 at 0.9, 0.8, 0.6, 0.3, 0.2 with precision
    // 1, 1, 3/4, 4/11, 5/24 → AP = (2 + 3/4 + 4/11 + 5/24) / 5 = 877/1320.
    close(report.micro.prAuc, 877 / 1320);
  });

  test("macro averages (ROC-AUC over labels where it is defined)", () => {
    close(report.macro.f1, (2 / 3 + 0 + 0) / 3);
    assert.equal(report.macroF1, report.macro.f1);
    close(report.macro.precision, 3 / 5 / 3);
    close(report.macro.recall, 3 / 4 / 3);
    close(report.macro.accuracy, (0.7 + 1 + 0.9) / 3);
    close(report.macro.rocAuc, (20 / 24 + 0.5) / 2);
    close(report.macro.prAuc, (93 / 112 + 0 + 0.1) / 3);
  });

  test("tuned thresholds change the confusion table", () => {
    const tuned = evaluate(PROBS, LABELS, ["a", "b", "c"], tuneThresholds(PROBS, LABELS));
    assert.deepEqual(tuned.thresholds, [0.6, 0.5, 0.2]);
    const a = tuned.perLabel.a;
    assert.ok(a);
    assert.deepEqual([a.tn, a.fp, a.fn, a.tp], [5, 1, 1, 3]);
    const c = tuned.perLabel.c;
    assert.ok(c);
    assert.deepEqual([c.tn, c.fp, c.fn, c.tp], [0, 9, 0, 1]);
  });

  test("report is plain JSON (round-trips unchanged)", () => {
    assert.deepEqual(JSON.parse(JSON.stringify(report)), report);
  });

  test("input validation", () => {
    assert.throws(() => evaluate(PROBS, LABELS, ["a", "b"]), /2 label names given for 3/);
    assert.throws(() => evaluate(PROBS, LABELS, ["a", "a", "b"]), /unique/);
    assert.throws(() => evaluate(PROBS, LABELS, ["a", "b", "c"], [0.5]), /1 thresholds given for 3/);
    assert.throws(
      () => evaluate([[0.1, 0.2], [0.3]], [[0, 1], [1]], ["a", "b"]),
      /probs row 1 has 1 columns/,
    );
    assert.throws(() => evaluate([[0.1]], [], ["a"]), /1 rows but labels has 0/);
  });

  test("prototype CSV has exactly the prototype's columns", () => {
    const { csv, text } = formatPrototypeTable(report);
    const lines = csv.trimEnd().split("\n");
    assert.equal(lines[0], "label,accuracy,precision,recall,f1,tn,fp,fn,tp");
    assert.equal(lines.length, 4);
    assert.equal(lines[1], `a,0.7,0.6,0.75,${2 / 3},4,2,1,3`);
    assert.equal(lines[2], "b,1,0,0,0,10,0,0,0");
    assert.equal(lines[3], "c,0.9,0,0,0,9,0,1,0");
    // Text: a header, the three labels, and the averages; ROC-AUC of b shown as "-".
    const textLines = text.trimEnd().split("\n");
    assert.match(textLines[0] as string, /^label\s+accuracy\s+precision\s+recall\s+f1\s+tn\s+fp\s+fn\s+tp/);
    assert.match(
      textLines[1] as string,
      /^a\s+0\.7000\s+0\.6000\s+0\.7500\s+0\.6667\s+4\s+2\s+1\s+3\s+0\.8333/,
    );
    assert.match(textLines[2] as string, /^b\s.*\s-\s+0\.0000$/);
    assert.ok(
      textLines.some((l) => /^micro avg\s+0\.8667\s+0\.6000\s+0\.6000\s+0\.6000\s+23\s+2\s+2\s+3/.test(l)),
    );
    assert.ok(textLines.some((l) => l.startsWith("macro avg")));
  });

  test("CSV quotes label names that need it", () => {
    const r = evaluate([[0.9]], [[1]], ['odd,"name"']);
    assert.equal(formatPrototypeTable(r).csv.split("\n")[1], '"odd,""name""",1,1,1,1,0,0,0,1');
  });
});
