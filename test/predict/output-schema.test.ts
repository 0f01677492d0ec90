// One output shape for a scored text everywhere: `predict`, `serve`, `tweets score` and the
// evaluation predictions of train/eval all write `probs` {label: p}, `decisions` {label: boolean}
// and `flagged` [labels decided true]; ground truth is `truth` {label: 0/1}, never `labels`.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type { DataRecord } from "../../src/data/load.js";
import { predictFile } from "../../src/predict/predict.js";
import { readPredictionsFile } from "../../src/report/run.js";
import { writeEvaluationFiles } from "../../src/run/eval-files.js";
import { evaluate } from "../../src/run/metrics.js";
import { classifyResponse } from "../../src/serve/server.js";
import { scoreTweets } from "../../src/sources/score.js";
import { KeywordClassifier } from "../serve/keyword-classifier.js";

const dir = mkdtempSync(join(tmpdir(), "toxlora-schema-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// obscene 0.85 ≥ 0.5, discriminatory 0.85 ≥ 0.4; violent and corporate below their thresholds.
const TEXT = "エロくて差別的";
const EXPECTED = {
  decisions: { obscene: true, discriminatory: true, violent: false, corporate: false },
  flagged: ["obscene", "discriminatory"],
};

const readJsonl = (file: string) =>
  readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

function assertScored(row: Record<string, unknown>, where: string): void {
  assert.deepEqual(row.decisions, EXPECTED.decisions, `${where}: decisions`);
  assert.deepEqual(row.flagged, EXPECTED.flagged, `${where}: flagged`);
  assert.deepEqual(Object.keys(row.probs as object), Object.keys(EXPECTED.decisions), `${where}: probs`);
  assert.equal((row.probs as Record<string, number>).obscene, 0.85, `${where}: probs.obscene`);
  assert.equal(row.labels, undefined, `${where}: no "labels" field`);
}

test("predict, serve and tweets score write the same probs/decisions/flagged", async () => {
  const clf = new KeywordClassifier();

  const input = join(dir, "texts.txt");
  writeFileSync(input, `${TEXT}\n`);
  const out = join(dir, "pred.jsonl");
  await predictFile(clf, { input, out });
  const [predicted] = readJsonl(out);
  assert.ok(predicted);
  assertScored(predicted, "predict");

  const response = classifyResponse(clf, await clf.predict([TEXT])) as { results: Record<string, unknown>[] };
  assert.ok(response.results[0]);
  assertScored(response.results[0], "serve");

  const tweets = join(dir, "tweets.jsonl");
  writeFileSync(tweets, `${JSON.stringify({ id: "1", text: TEXT })}\n`);
  const scored = join(dir, "scored.jsonl");
  await scoreTweets(clf, tweets, scored, { summaryFile: null });
  const [tweet] = readJsonl(scored);
  assert.ok(tweet);
  assertScored(tweet, "tweets score");
});

test("evaluation predictions: truth, and the scored fields at the tuned thresholds", async () => {
  const labels = ["obscene", "discriminatory", "violent", "corporate"];
  const records = [{ id: "a", text: TEXT, labels: [1, 0, 0, 1] }] as unknown as DataRecord[];
  const probs = [[0.85, 0.85, 0.05, 0.05]];
  const thresholds = [0.5, 0.4, 0.5, 0.6];
  await writeEvaluationFiles(
    dir,
    "eval.jsonl",
    { records, labels, probs },
    evaluate(probs, [[1, 0, 0, 1]], labels),
    evaluate(probs, [[1, 0, 0, 1]], labels, thresholds),
  );
  const [row] = readJsonl(join(dir, "eval.jsonl"));
  assert.ok(row);
  assert.deepEqual(row.truth, { obscene: 1, discriminatory: 0, violent: 0, corporate: 1 });
  assertScored(row, "eval predictions");
  // The report reads them back.
  const [back] = await readPredictionsFile(join(dir, "eval.jsonl"), labels);
  assert.deepEqual(back?.truth, row.truth);
});
