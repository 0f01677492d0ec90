// --max-length against the model's position embeddings, and a train start that fails validation:
// nothing is created, so the same command can be fixed and run again.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { readHfConfig } from "../../src/io/hf-config.js";
import { fitMaxLength } from "../../src/models/limits.js";
import { RunClassifier } from "../../src/predict/classifier.js";
import { evaluateRun } from "../../src/predict/evaluate.js";
import { exportOnnx } from "../../src/predict/export.js";
import { predictFile } from "../../src/predict/predict.js";
import { train } from "../../src/train/trainer.js";
import { DEMO_DATA, demoTexts, tinyModel } from "./helpers.js";

const LIMIT = 24; // the tiny model's max_position_embeddings: most demo texts are longer
let dir: string;
let model: string;
let data: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-limits-"));
  model = await tinyModel(join(dir, "model"), demoTexts(), "bert", {
    hidden: 16,
    layers: 1,
    maxPositions: LIMIT,
  });
  data = join(dir, "data.jsonl");
  writeFileSync(data, `${readFileSync(DEMO_DATA, "utf8").split("\n").slice(0, 80).join("\n")}\n`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const tiny = { epochs: 1, batchSize: 16, loraR: 2, loraAlpha: 4 };

test("fitMaxLength: lowers to the model's limit with a notice naming both numbers; refuses too short", async () => {
  const cfg = await readHfConfig(model);
  assert.deepEqual(fitMaxLength(LIMIT, cfg, 2), { maxLength: LIMIT });
  const f = fitMaxLength(100_000, cfg, 2);
  assert.equal(f.maxLength, LIMIT);
  assert.match(
    f.notice ?? "",
    /--max-length 100000 is more than .*max_position_embeddings: 24 tokens\); using 24/,
  );
  assert.throws(
    () => fitMaxLength(2, cfg, 2),
    /--max-length 2 is too short: .* 2 special tokens, so at least 3/,
  );
});

test("a train start that fails validation creates nothing; fixed, the same --out trains", async () => {
  const out = join(dir, "run-retry");
  await assert.rejects(
    train({ ...tiny, model, data, out, maxLength: 1 }, { progress: "quiet" }),
    /--max-length 1 is too short/,
  );
  assert.equal(existsSync(out), false, "no run directory after a refused start");
  await assert.rejects(
    train({ ...tiny, model, data, out, posWeight: "nosuchlabel=2" }, { progress: "quiet" }),
    /--pos-weight: unknown label/,
  );
  await assert.rejects(
    train({ ...tiny, model, data, out, resampleEachEpoch: "no-such-strategy" }, { progress: "quiet" }),
  );
  assert.equal(existsSync(out), false);
  // The default --max-length (512) is more than the model reads: lowered, and training completes.
  const r = await train({ ...tiny, model, data, out }, { progress: "quiet" });
  assert.equal(r.runDir, out);
  const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as {
    maxLength: number;
    train: { maxLength: number };
  };
  assert.equal(cfg.maxLength, LIMIT);
  assert.equal(cfg.train.maxLength, LIMIT);
});

test("a run whose maxLength exceeds the model is fitted at predict, eval and export, with a notice", async () => {
  const run = join(dir, "run-retry");
  const cfgFile = join(run, "config.json");
  const cfg = JSON.parse(readFileSync(cfgFile, "utf8")) as Record<string, unknown>;
  writeFileSync(cfgFile, JSON.stringify({ ...cfg, maxLength: 100_000 })); // as a run trained before the check

  const notices: string[] = [];
  const clf = await RunClassifier.load(run, { onNotice: (l) => notices.push(l) });
  try {
    assert.equal(clf.maxLength, LIMIT);
    assert.deepEqual(clf.notices, notices);
    assert.match(notices[0] ?? "", /the run's maxLength 100000 is more than .* using 24/);
    const long = "ネコ耳族はみんな不潔で気持ち悪い".repeat(20);
    const [scored, short] = await clf.predict([long, "短い"]);
    assert.equal(scored?.probs.length, clf.labels.length);
    assert.equal(scored?.truncated, true);
    assert.equal(short?.truncated, undefined);
    const input = join(dir, "long.txt");
    writeFileSync(input, `${long}\n短い\n${long}\n`);
    const r = await predictFile(clf, { input, out: join(dir, "long.out.jsonl") });
    assert.equal(r.truncatedRows, 2);
  } finally {
    await clf.close();
  }

  const evalNotices: string[] = [];
  const ev = await evaluateRun(run, data, {
    outDir: join(dir, "eval"),
    onNotice: (l) => evalNotices.push(l),
  });
  assert.equal(ev.rows, 80);
  assert.equal(evalNotices.length, 1);

  const exported = await exportOnnx(run, join(dir, "export", "model.onnx"));
  assert.match(exported.notices[0] ?? "", /using 24/);
  const exportedCfg = JSON.parse(readFileSync(join(dir, "export", "config.json"), "utf8")) as {
    toxlora: { maxLength: number };
  };
  assert.equal(exportedCfg.toxlora.maxLength, LIMIT);
});

test("export refuses to write its config.json over the run's or the base model's", async () => {
  const run = join(dir, "run-retry");
  const before = readFileSync(join(run, "config.json"));
  await assert.rejects(exportOnnx(run, join(run, "model.onnx")), /refusing to write .*config\.json/);
  await assert.rejects(exportOnnx(run, join(model, "model.onnx")), /refusing to write .*config\.json/);
  assert.deepEqual(readFileSync(join(run, "config.json")), before);
});

test("train --resume refuses data files that changed since the run started", async () => {
  const own = join(dir, "resume-data.jsonl");
  writeFileSync(own, readFileSync(data));
  const out = join(dir, "run-resume");
  const ac = new AbortController();
  ac.abort(); // stops after the first step, with a checkpoint
  const part = await train({ ...tiny, model, data: own, out }, { progress: "quiet", signal: ac.signal });
  assert.equal(part.interrupted, true);
  writeFileSync(own, readFileSync(DEMO_DATA)); // the same file name, other rows
  await assert.rejects(
    train({ ...tiny, model, data: own, out, resume: true }, { progress: "quiet" }),
    /--resume: .*resume-data\.jsonl has changed since the run started \(sha256 [0-9a-f]{12}…, now [0-9a-f]{12}…\)/,
  );
});
