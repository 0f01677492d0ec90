// `predict --resume` continues only the same job: same input (path, size, rows consumed so far),
// same classifier, same options. Anything else is refused with one line; nothing is appended.
import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, test } from "node:test";
import { predictFile } from "../../src/predict/predict.js";
import { KeywordClassifier } from "../serve/keyword-classifier.js";

let dir: string;
let input: string;
let out: string;
const N = 600; // more than two blocks of PREDICT_BLOCK (256) texts
const texts = (tag: string) =>
  Array.from({ length: N }, (_, i) => `${tag}${String(i).padStart(3, "0")} 会社`);

before(() => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-resume-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  input = join(dir, "in.txt");
  out = join(dir, `out-${Math.random().toString(36).slice(2)}.jsonl`);
  writeFileSync(input, `${texts("a").join("\n")}\n`);
});

/** Scores `input` into `out` and stops after the first block of 256: a resumable partial output. */
async function interrupted(clf = new KeywordClassifier()): Promise<void> {
  const ac = new AbortController();
  const r = await predictFile(clf, {
    input,
    out,
    signal: ac.signal,
    onProgress: () => ac.abort(),
  });
  assert.equal(r.interrupted, true);
  assert.equal(r.rows, 256);
}

const rows = (file: string) =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { index: number; text: string });

test("the same job resumes: one row per input, each with its own text", async () => {
  await interrupted();
  assert.ok(existsSync(`${out}.state.json`));
  const r = await predictFile(new KeywordClassifier(), { input, out, resume: true });
  assert.equal(r.resumedRows, 256);
  assert.equal(r.rows, N);
  const got = rows(out);
  assert.deepEqual(
    got.map((x) => x.text),
    texts("a"),
  );
});

test("another input file is refused, naming both", async () => {
  await interrupted();
  const other = join(dir, "other.txt");
  writeFileSync(other, `${texts("b").join("\n")}\n`);
  await assert.rejects(
    predictFile(new KeywordClassifier(), { input: other, out, resume: true }),
    /cannot resume: it was made with input ".*in\.txt", not ".*other\.txt"/,
  );
  assert.equal(rows(`${out}.partial`).length, 256, "nothing appended");
});

test("the same path with other rows (same size) is refused by the rows' digest", async () => {
  await interrupted();
  writeFileSync(input, `${texts("b").join("\n")}\n`); // same byte size, other texts
  await assert.rejects(
    predictFile(new KeywordClassifier(), { input, out, resume: true }),
    /cannot resume: its first 256 rows are not the ones .*\.partial was made from/,
  );
  assert.equal(rows(`${out}.partial`).length, 256);
});

test("a shorter or longer input (size changed) is refused", async () => {
  await interrupted();
  writeFileSync(input, `${texts("a").slice(0, 10).join("\n")}\n`);
  await assert.rejects(
    predictFile(new KeywordClassifier(), { input, out, resume: true }),
    /made with inputBytes \d+, not \d+/,
  );
});

test("another classifier (thresholds) or text field is refused", async () => {
  await interrupted();
  const changed = new KeywordClassifier();
  (changed as { thresholds: number[] }).thresholds = [0.1, 0.1, 0.1, 0.1];
  await assert.rejects(
    predictFile(changed, { input, out, resume: true }),
    /made with thresholds \[0\.5,0\.4,0\.5,0\.6\], not \[0\.1,0\.1,0\.1,0\.1\]/,
  );
  await assert.rejects(
    predictFile(new KeywordClassifier(), { input, out, resume: true, textField: "body" }),
    /made with textField null, not "body"/,
  );
});

test("rows written after the state's last update (killed in between) are scored again, once", async () => {
  await interrupted();
  // A chunk reached the file but the process died before the state file counted it.
  appendFileSync(`${out}.partial`, `${JSON.stringify({ index: 256, text: "stale" })}\n`);
  const r = await predictFile(new KeywordClassifier(), { input, out, resume: true });
  assert.equal(r.resumedRows, 256);
  assert.deepEqual(
    rows(out).map((x) => x.text),
    texts("a"),
  );
});

test("a partial output without a state file is refused", async () => {
  await interrupted();
  rmSync(`${out}.state.json`);
  await assert.rejects(
    predictFile(new KeywordClassifier(), { input, out, resume: true }),
    /cannot resume: no .*state\.json records what its 256 rows were made from/,
  );
});
