// The end-to-end workflow from the CLI: train → eval → predict → export on the real posts of
// test/fixtures/data/inspection-ai/subset.csv, with a tiny random Llama-shaped checkpoint around the
// real llm-jp-3 tokenizer; then the exported ONNX model in plain onnxruntime-node.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import * as ort from "onnxruntime-node";
import { loadDataset } from "../../src/data/load.js";
import { inspectionAiSchema } from "../../src/data/schema.js";
import { writeRandomCheckpoint } from "../../src/models/random-checkpoint.js";
import { loadClassifier } from "../../src/predict/classifier.js";
import { sha256File } from "../../src/run/data.js";
import { loadTokenizer } from "../../src/tokenizers/tokenizer.js";
import { fixture } from "../fixture.js";

const DATA = fixture("data/inspection-ai/subset.csv");
const SPM = fixture("tokenizers/llm-jp/llm-jp-tokenizer-100k.ver3.0b1.model");
const MAIN = resolve(process.cwd(), "src/cli/main.ts");

let dir: string;
let model: string;
let run: string;

function cli(...args: string[]): { stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", MAIN, ...args], {
    encoding: "utf8",
    timeout: 240_000,
  });
  assert.equal(r.status, 0, `toxlora ${args.join(" ")} failed:\n${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-e2e-"));
  model = join(dir, "model");
  run = join(dir, "run");
  await writeRandomCheckpoint(model, {
    arch: "llama",
    vocabSize: 99_584,
    hidden: 32,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediate: 64,
    maxPositions: 128,
    bosTokenId: 1,
    eosTokenId: 2,
    seed: 3,
  });
  copyFileSync(SPM, join(model, "tokenizer.model"));
});

after(() => rmSync(dir, { recursive: true, force: true }));

test("train 3 epochs from the CLI writes a complete, reloadable run directory", () => {
  cli(
    "train",
    ...["--model", model, "--data", DATA, "--preset", "inspection-ai", "--epochs", "3", "--batch-size", "16"],
    ...["--lr", "2e-3", "--max-length", "64", "--lora-r", "4", "--lora-alpha", "8", "--out", run, "--quiet"],
  );
  for (const f of [
    "config.json",
    "metrics.jsonl",
    "eval.json",
    "thresholds.json",
    "manifest.json",
    "log.csv",
    "adapter/adapter_config.json",
    "adapter/adapter_model.safetensors",
    "predictions/eval.jsonl",
  ]) {
    assert.ok(existsSync(join(run, f)), `missing ${f}`);
  }
  const metrics = readFileSync(join(run, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(metrics.filter((m) => m.type === "epoch").length, 3);
  assert.equal(metrics.filter((m) => m.type === "eval").length, 3);
  assert.ok(metrics.filter((m) => m.type === "step").every((m) => Number.isFinite(m.loss)));
  const adapterCfg = JSON.parse(readFileSync(join(run, "adapter/adapter_config.json"), "utf8"));
  assert.equal(adapterCfg.peft_type, "LORA");
  assert.equal(adapterCfg.task_type, "SEQ_CLS");
  // The prototype's columns first, then the bootstrap intervals (on by default).
  assert.equal(
    readFileSync(join(run, "log.csv"), "utf8").split("\n")[0],
    "label,accuracy,precision,recall,f1,tn,fp,fn,tp,roc_auc,pr_auc,precision_lo,precision_hi," +
      "recall_lo,recall_hi,f1_lo,f1_hi,roc_auc_lo,roc_auc_hi,pr_auc_lo,pr_auc_hi",
  );
  const ev = JSON.parse(readFileSync(join(run, "eval.json"), "utf8"));
  for (const entry of [...Object.values(ev.tuned.perLabel), ev.tuned.micro, ev.at05.macro] as {
    f1: number;
    ci95: Record<string, [number, number] | null>;
  }[]) {
    assert.deepEqual(Object.keys(entry.ci95), ["precision", "recall", "f1", "rocAuc", "prAuc"]);
    const [lo, hi] = entry.ci95.f1 as [number, number];
    assert.ok(lo <= entry.f1 && entry.f1 <= hi, `F1 ${entry.f1} in [${lo}, ${hi}]`);
  }
  assert.equal(ev.tuned.bootstrap.resamples, 1000);
  const thresholds = JSON.parse(readFileSync(join(run, "thresholds.json"), "utf8"));
  assert.equal(thresholds.labels.length, 7);
  assert.equal(thresholds.tunedOn, "valid");
});

test("the manifest records the data file hash and the split ids", async () => {
  const m = JSON.parse(readFileSync(join(run, "manifest.json"), "utf8"));
  assert.equal(m.files[0].sha256, await sha256File(DATA));
  const { train, valid, test: testIds } = m.splits;
  assert.equal(train.length + valid.length + testIds.length, 437);
  assert.equal(new Set([...train, ...valid, ...testIds]).size, 437);
});

test("eval and predict from the CLI", async () => {
  const out = join(dir, "eval");
  const r = cli("eval", "--run", run, "--data", DATA, "--out", out);
  assert.match(r.stdout, /at threshold 0\.5:/);
  assert.ok(existsSync(join(out, "log.csv")));
  const ev = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
  assert.equal(ev.rows, 437);

  const pred = join(dir, "pred.jsonl");
  cli("predict", "--run", run, "--input", DATA, "--out", pred, "--quiet");
  const rows = readFileSync(pred, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  const source = await loadDataset(DATA, inspectionAiSchema());
  assert.equal(rows.length, source.records.length);
  rows.forEach((row, i) => {
    assert.equal(row.id, source.records[i].id);
    assert.equal(row.text, source.records[i].text);
    assert.equal(Object.keys(row.probs).length, 7);
  });
});

test("export: the standalone ONNX model in plain onnxruntime matches toxlora's predictions", async () => {
  const onnxPath = join(dir, "export", "model.onnx");
  cli("export", "--run", run, "--out", onnxPath);
  const cfg = JSON.parse(readFileSync(join(dir, "export", "config.json"), "utf8"));
  assert.equal(cfg.problem_type, "multi_label_classification");
  assert.equal(Object.keys(cfg.id2label).length, 7);
  assert.ok(existsSync(join(dir, "export", "tokenizer.model")));

  const texts = [
    "いわゆる天使だろ",
    "底知れないカリスマ性があるよな",
    "このアニメの作画は本当にひどい、制作会社は最低だ",
  ];
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
  const session = await ort.InferenceSession.create(onnxPath);
  assert.deepEqual([...session.inputNames].sort(), ["attention_mask", "input_ids"]);
  const out = await session.run({
    input_ids: new ort.Tensor("int64", flat, [texts.length, len]),
    attention_mask: new ort.Tensor("int64", mask, [texts.length, len]),
  });
  const logits = out.logits.data as Float32Array;
  expected.forEach((row, r) => {
    row.forEach((p, j) => {
      const q = 1 / (1 + Math.exp(-logits[r * 7 + j]));
      assert.ok(Math.abs(p - q) < 1e-5, `row ${r} label ${j}: toxlora ${p} vs onnx ${q}`);
    });
  });
  await session.release();
});

test("bad input to train gives one clear error naming the problem", () => {
  const bad = join(dir, "bad.jsonl");
  writeFileSync(bad, '{"id":"1","text":"a","obscene":"maybe"}\n');
  const r = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      MAIN,
      "train",
      "--model",
      model,
      "--data",
      bad,
      "--out",
      join(dir, "bad-run"),
      "--quiet",
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad\.jsonl:1: field "obscene": unknown label value "maybe"/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
});
