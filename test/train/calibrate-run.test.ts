// `train --calibrate`: the run stores its calibration, thresholds are tuned on calibrated
// validation probabilities, and the classifier (predict, serve, tweets score) and the exported
// ONNX graph give the calibrated probabilities.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import * as ort from "onnxruntime-node";
import { loadDataset } from "../../src/data/load.js";
import { llmjpToxicitySchema } from "../../src/data/schema.js";
import { loadClassifier, RunClassifier } from "../../src/predict/classifier.js";
import { exportOnnx } from "../../src/predict/export.js";
import { buildReport } from "../../src/report/report.js";
import type { Calibration } from "../../src/run/calibration.js";
import { MIN_TUNING_POSITIVES, tuneThresholds } from "../../src/run/metrics.js";
import { loadTokenizer } from "../../src/tokenizers/tokenizer.js";
import { train } from "../../src/train/trainer.js";
import { DEMO_DATA, demoTexts, tinyModel } from "./helpers.js";

let dir: string;
let run: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-calibrate-"));
  const model = await tinyModel(join(dir, "model"), demoTexts(), "bert", { hidden: 16, layers: 1 });
  run = join(dir, "run");
  await train(
    {
      model,
      data: DEMO_DATA,
      epochs: 2,
      batchSize: 32,
      maxLength: 24,
      loraR: 2,
      loraAlpha: 4,
      lr: 2e-3,
      calibrate: "temperature",
      bootstrap: 100,
      out: run,
    },
    { progress: "quiet" },
  );
});

after(() => rmSync(dir, { recursive: true, force: true }));

test("the run stores a temperature per label; thresholds are tuned on calibrated probabilities", async () => {
  const cal = JSON.parse(readFileSync(join(run, "calibration.json"), "utf8")) as Calibration;
  assert.equal(cal.method, "temperature");
  assert.equal(cal.labels.length, 7);
  assert.ok(cal.scale.every((s) => s > 0) && cal.bias.every((b) => b === 0));
  // Calibration is fitted to lower the validation log-loss: it never raises it.
  cal.logLoss.after.forEach((after, j) => {
    assert.ok(after <= (cal.logLoss.before[j] as number) + 1e-12);
  });

  const manifest = JSON.parse(readFileSync(join(run, "manifest.json"), "utf8"));
  const data = await loadDataset(DEMO_DATA, llmjpToxicitySchema());
  const byId = new Map(data.records.map((r) => [r.id, r]));
  const validRows = (manifest.splits.valid as string[]).map((id) => {
    const r = byId.get(id);
    assert.ok(r, `valid id ${id} is in the data`);
    return r;
  });
  const clf = await RunClassifier.load(run);
  assert.deepEqual(clf.calibration?.scale, cal.scale);
  const validProbs = await clf.probs(validRows.map((r) => r.text));
  const thresholds = JSON.parse(readFileSync(join(run, "thresholds.json"), "utf8")).thresholds;
  assert.deepEqual(
    tuneThresholds(
      validProbs,
      validRows.map((r) => r.labels),
      { minPositives: MIN_TUNING_POSITIVES },
    ),
    thresholds,
  );
  // The test predictions the run wrote are the classifier's (calibrated) probabilities.
  const first = JSON.parse(readFileSync(join(run, "predictions/eval.jsonl"), "utf8").split("\n")[0]);
  const [p] = await clf.probs([first.text]);
  cal.labels.forEach((l, j) => {
    assert.ok(Math.abs(p[j] - first.probs[l]) < 1e-6, l);
  });
  await clf.close();
});

test("export folds the calibration into the graph's logits", async () => {
  const out = join(dir, "export", "model.onnx");
  await exportOnnx(run, out);
  const cfg = JSON.parse(readFileSync(join(dir, "export", "config.json"), "utf8"));
  assert.equal(cfg.toxlora.calibration.inGraph, true);
  const texts = ["ネコ耳族はみんな不潔で気持ち悪い", "今日はいい天気"];
  const clf = await loadClassifier(run);
  const expected = await clf.probs(texts);
  await clf.close();
  const tok = await loadTokenizer(join(dir, "export"));
  const ids = texts.map((t) => tok.encode(t));
  const len = Math.max(...ids.map((x) => x.length));
  const flat = new BigInt64Array(texts.length * len).fill(BigInt(tok.padId));
  const mask = new BigInt64Array(texts.length * len);
  ids.forEach((row, r) => {
    row.forEach((id, k) => {
      flat[r * len + k] = BigInt(id);
      mask[r * len + k] = 1n;
    });
  });
  const session = await ort.InferenceSession.create(out);
  const res = await session.run({
    input_ids: new ort.Tensor("int64", flat, [texts.length, len]),
    attention_mask: new ort.Tensor("int64", mask, [texts.length, len]),
  });
  const logits = res.logits.data as Float32Array;
  expected.forEach((row, r) => {
    row.forEach((p, j) => {
      const q = 1 / (1 + Math.exp(-logits[r * 7 + j]));
      assert.ok(Math.abs(p - q) < 1e-5, `row ${r} label ${j}: toxlora ${p} vs onnx ${q}`);
    });
  });
  await session.release();
});

test("the report states the calibration and the ECE bin count", async () => {
  const html = readFileSync(await buildReport(run, { out: join(dir, "report.html") }), "utf8");
  assert.match(html, /temperature scaling fitted per label on \d+ validation rows/);
  assert.ok(html.includes("<th>ECE (10 bins)</th>"));
  assert.ok(html.includes('data-chart="reliability-obscene"'));
});
