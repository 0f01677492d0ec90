// `predict --resume` checks that the kept rows come from the same model: a run loaded with another
// `--quantize`, or a tfidf-lr run whose model files changed, is refused in one line.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type LoadClassifierOptions, loadClassifier } from "../../src/predict/classifier.js";
import { predictFile } from "../../src/predict/predict.js";
import { train } from "../../src/train/trainer.js";
import { fixture } from "../fixture.js";
import { trainTinyRun } from "../report/trained-run.js";
import { demoTexts } from "../train/helpers.js";

let dir: string;
let input: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-resume-model-"));
  const texts = demoTexts();
  input = join(dir, "in.jsonl");
  const rows = Array.from({ length: 600 }, (_, i) =>
    JSON.stringify({ id: i, text: texts[i % texts.length] }),
  );
  writeFileSync(input, `${rows.join("\n")}\n`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Predicts into `out` and stops after the first block of rows (the output stays resumable). */
async function interrupted(run: string, out: string, opts: LoadClassifierOptions = {}): Promise<void> {
  const clf = await loadClassifier(run, opts);
  const ac = new AbortController();
  try {
    const r = await predictFile(clf, { input, out, signal: ac.signal, onProgress: () => ac.abort() });
    assert.ok(r.interrupted && r.rows > 0 && r.rows < 600, `${r.rows} rows`);
  } finally {
    await clf.close();
  }
}

async function resume(run: string, out: string, opts: LoadClassifierOptions = {}) {
  const clf = await loadClassifier(run, opts);
  try {
    return await predictFile(clf, { input, out, resume: true });
  } finally {
    await clf.close();
  }
}

test("a LoRA run: resuming with another --quantize is refused; with the same one it continues", async () => {
  const run = await trainTinyRun(join(dir, "lora"));
  const int8 = { quantize: "int8", quantBlockSize: 16, quantCache: false } as const;
  const out = join(dir, "lora.jsonl");
  await interrupted(run, out, int8);
  await assert.rejects(resume(run, out), (err: Error) => {
    assert.match(err.message, /cannot resume: it was made with classifier .*"quantize":\{"scheme":"int8"/);
    assert.equal(err.message.split("\n").length, 1);
    return true;
  });
  const r = await resume(run, out, int8);
  assert.ok(r.resumedRows > 0 && r.rows === 600);
});

test("a tfidf-lr run: resuming after its model files changed is refused", async () => {
  const run = join(dir, "tfidf");
  await train(
    {
      model: "tfidf-lr",
      data: fixture("data/inspection-ai/subset.csv"),
      preset: "inspection-ai",
      labels: ["卑語", "差別", "迷惑行為"],
      out: run,
      seed: 3,
    },
    { progress: "quiet" },
  );
  const out = join(dir, "tfidf.jsonl");
  await interrupted(run, out);
  const weights = join(run, "model", "weights.safetensors");
  const bytes = readFileSync(weights);
  bytes[bytes.length - 1] ^= 1; // one weight differs: another model
  writeFileSync(weights, bytes);
  await assert.rejects(resume(run, out), /cannot resume: it was made with classifier .*runSha256/);
});
