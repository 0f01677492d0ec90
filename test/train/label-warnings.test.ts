// Small or skewed data is never a silent outcome: a label with no positive row in a split, or with
// fewer than 5 validation positives, is warned about on stderr (even with --quiet) and in
// manifest.json `warnings`, and its threshold stays 0.5 where tuning would fit noise.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import type { DataRecord } from "../../src/data/load.js";
import { loadClassifier } from "../../src/predict/classifier.js";
import { positiveCountWarnings } from "../../src/run/data.js";
import { CONSTANT_LOGIT_SPREAD, degenerateLabels } from "../../src/run/label-checks.js";
import { MIN_TUNING_POSITIVES, tuneThresholds } from "../../src/run/metrics.js";
import { train } from "../../src/train/trainer.js";
import { tinyModel } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "toxlora-label-warn-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const rec = (labels: number[]) => ({ id: "x", text: "x", labels }) as unknown as DataRecord;

test("positiveCountWarnings: none in train, too few or none in valid, none in test", () => {
  const labels = ["common", "rare", "never", "untested"];
  const row = (c: number, r: number, u: number) => rec([c, r, 0, u]);
  const train = [row(1, 1, 1), row(0, 0, 1)];
  const valid = [...Array.from({ length: 5 }, () => row(1, 0, 1)), row(0, 1, 0)];
  const test = [row(1, 1, 0)];
  const w = positiveCountWarnings({ train, valid, test }, labels);
  assert.deepEqual(
    w.map((m) =>
      /^label "([^"]+)": (no positive row in the \w+|only \d+ positive rows? in the \w+)/.exec(m)?.slice(1),
    ),
    [
      ["rare", "only 1 positive row in the validation"],
      ["never", "no positive row in the training"],
      ["never", "no positive row in the validation"],
      ["never", "no positive row in the test"],
      ["untested", "no positive row in the test"],
    ],
  );
  assert.match(w[0] as string, /fewer than 5\b.*stays at 0\.5/);
  // No validation split at all is warned about elsewhere (once, not per label).
  assert.deepEqual(positiveCountWarnings({ train, valid: [], test: [] }, ["common"]), []);
});

test("tuneThresholds keeps 0.5 for a label with fewer than minPositives positives", () => {
  // Label 0: 4 positives, all scored 0.9, negatives at 0.3 → F1 is best anywhere in (0.3, 0.9].
  // The tuned value is 0.5 by the tie rule, so use scores that move it: positives at 0.2.
  const probs = [0.2, 0.2, 0.2, 0.2, 0.1, 0.1].map((p) => [p]);
  const truth = [1, 1, 1, 1, 0, 0].map((t) => [t]);
  assert.deepEqual(tuneThresholds(probs, truth), [0.2]);
  assert.deepEqual(tuneThresholds(probs, truth, { minPositives: MIN_TUNING_POSITIVES }), [0.5]);
  const five = [...probs, [0.2]];
  assert.deepEqual(tuneThresholds(five, [...truth, [1]], { minPositives: MIN_TUNING_POSITIVES }), [0.2]);
});

/** 120 rows: "common" in 40% (keyword 犬), "rare" in 8 rows (keyword 鳥), "never" in none. */
function skewedData(): string {
  const rows = Array.from({ length: 120 }, (_, i) => ({
    id: `r${i}`,
    text: `${i % 5 < 2 ? "犬" : "猫"}の話${i}${i % 15 === 0 ? "鳥" : ""}`,
    common: i % 5 < 2 ? "yes" : "no",
    rare: i % 15 === 0 ? "yes" : "no",
    never: "no",
  }));
  const file = join(dir, "skewed.jsonl");
  writeFileSync(file, rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
  return file;
}

test("train --quiet still warns on stderr; manifest.json lists the warnings; the threshold stays 0.5", () => {
  const data = skewedData();
  const out = join(dir, "run-tfidf");
  const q = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      resolve("src/cli/main.ts"),
      "train",
      "--model",
      "tfidf-lr",
      "--data",
      data,
      "--labels",
      "common,rare",
      "--valid-ratio",
      "0.25",
      "--out",
      out,
      "--quiet",
    ],
    { encoding: "utf8", timeout: 120_000 },
  );
  assert.equal(q.status, 0, q.stderr);
  assert.match(
    q.stderr,
    /warning: label "rare": (no positive row|only \d positive rows?) in the validation split/,
  );
  const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
  assert.ok(manifest.warnings.some((w: string) => w.startsWith('label "rare":')));
  const thresholds = JSON.parse(readFileSync(join(out, "thresholds.json"), "utf8"));
  assert.equal(thresholds.thresholds[1], 0.5, "rare keeps 0.5");
});

test("the LoRA trainer keeps 0.5 for a label with too few validation positives", async () => {
  const data = skewedData();
  const texts = readFileSync(data, "utf8")
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { text: string }).text);
  const model = await tinyModel(join(dir, "model"), texts, "bert", { hidden: 16, layers: 1 });
  const out = join(dir, "run-lora");
  const result = await train(
    {
      model,
      data,
      labels: ["common", "rare", "never"],
      validRatio: 0.25,
      epochs: 1,
      batchSize: 16,
      maxLength: 16,
      loraR: 2,
      loraAlpha: 4,
      out,
    },
    { progress: "quiet" },
  );
  const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
  assert.ok(
    manifest.warnings.some((w: string) => w.startsWith('label "never": no positive row in the training')),
  );
  assert.ok(manifest.warnings.some((w: string) => w.startsWith('label "rare":')));
  const thresholds = JSON.parse(readFileSync(join(out, "thresholds.json"), "utf8"));
  assert.deepEqual(thresholds.thresholds.slice(1), [0.5, 0.5]);
  // The symptom issue #13 reported ("flagged all 72 test rows as that label"): the label with no
  // positive row must not flag every test row. (For a label with no validation positive a tuned
  // threshold is 0.5 too: every threshold gives F1 0 and ties go to the one nearest 0.5; what flags
  // every row is a model whose probability for the label sits above 0.5 everywhere.)
  const preds = readFileSync(join(out, "predictions", "eval.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { decisions: Record<string, boolean> });
  assert.equal(preds.length, (manifest.splits.test as string[]).length);
  const flagged = preds.filter((p) => p.decisions.never).length;
  assert.ok(flagged < preds.length, `never: ${flagged} of ${preds.length} test rows flagged`);
  // This one-epoch tiny model has learned none of the labels: every score sits near 0.5 and
  // "rare" (0.5019 everywhere, above its threshold of 0.5) is flagged on every test row.
  // eval.json says so per label.
  const ev = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
  const rare = ev.degenerate?.rare;
  assert.ok(rare, `eval.json flags "rare": ${JSON.stringify(ev.degenerate)}`);
  assert.equal(rare.constantScores, true);
  assert.equal(rare.oneClass.test, "all");
  assert.equal(rare.splits.test.flagged, preds.length);
  assert.match(rare.warning, /label "rare": its scores hardly vary .*flags every row: .*test 36 of 36/);
  assert.equal(ev.degenerate.never.constantScores, true);
  assert.equal(ev.degenerate.never.oneClass.test, undefined, "no row flagged and none positive: fine");
  assert.deepEqual(result.degenerate, ev.degenerate, "train() returns what eval.json holds");
  // Whoever loads the run to predict (predict, serve, tweets score, label) hears it too.
  const notices: string[] = [];
  const clf = await loadClassifier(out, { onNotice: (n) => notices.push(n) });
  await clf.close();
  assert.ok(
    notices.some((n) =>
      n.startsWith('this run\'s evaluation (eval.json): label "rare": its scores hardly vary'),
    ),
    notices.join("\n"),
  );
});

test("degenerateLabels: constant scores, every row flagged, no positive row found; a ranking label passes", () => {
  const labels = ["flat", "all", "none", "fine", "rareFine"];
  // Columns: flat (0.5002 everywhere), all (varies, all above 0.1), none (varies, all below 0.9),
  // fine (ranks, some flagged), rareFine (no positive row, none flagged).
  const probs = [
    [0.5002, 0.3, 0.2, 0.9, 0.1],
    [0.5002, 0.6, 0.4, 0.2, 0.05],
    [0.5002, 0.8, 0.6, 0.7, 0.2],
  ];
  const truth = [
    [1, 1, 1, 1, 0],
    [0, 0, 0, 0, 0],
    [0, 1, 0, 1, 0],
  ];
  const thresholds = [0.5, 0.1, 0.9, 0.5, 0.5];
  const d = degenerateLabels(labels, thresholds, [{ name: "test", scores: probs, probs, truth }]);
  assert.deepEqual(Object.keys(d), ["flat", "all", "none"]);
  assert.equal(d.flat?.constantScores, true);
  assert.deepEqual(d.flat?.oneClass, { test: "all" });
  assert.equal(d.all?.constantScores, false);
  assert.deepEqual(d.all?.oneClass, { test: "all" });
  assert.deepEqual(d.none?.oneClass, { test: "none" });
  assert.match(d.none?.warning ?? "", /at threshold 0\.9000 it flags no row: test 0 of 3 \(1 positive\)/);
  // Near-constant is judged on the model's own scores, before calibration; a spread of logits
  // just under CONSTANT_LOGIT_SPREAD counts, one just over does not.
  const near = (spread: number) => [[0.5], [1 / (1 + Math.exp(-spread))]];
  const split = (scores: number[][]) => [{ name: "v", scores, probs: scores, truth: [[0], [1]] }];
  // The threshold splits the two rows (the positive one is flagged), so only the spread counts.
  const at = [0.5 + 1e-6];
  assert.equal(degenerateLabels(["x"], at, split(near(CONSTANT_LOGIT_SPREAD * 0.9))).x?.constantScores, true);
  assert.equal(degenerateLabels(["x"], at, split(near(CONSTANT_LOGIT_SPREAD * 1.1))).x, undefined);
});
