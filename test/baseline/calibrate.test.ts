// `train --model tfidf-lr --calibrate`: the baseline run stores calibration.json like a LoRA run,
// tunes its thresholds on calibrated validation probabilities, and every consumer that loads it
// (predict, serve, eval: all through loadClassifier) gives the calibrated probabilities.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { loadTfidfLr } from "../../src/baseline/model.js";
import { loadDataset } from "../../src/data/load.js";
import { schemaFromOptions } from "../../src/data/schema.js";
import { loadClassifier } from "../../src/predict/classifier.js";
import { evaluateRun } from "../../src/predict/evaluate.js";
import { predictFile } from "../../src/predict/predict.js";
import type { Calibration } from "../../src/run/calibration.js";
import { MIN_TUNING_POSITIVES, tuneThresholds } from "../../src/run/metrics.js";
import { RUN_FILES } from "../../src/run/types.js";
import { createServer } from "../../src/serve/server.js";
import { train } from "../../src/train/trainer.js";
import { fixture } from "../fixture.js";

const DATA = fixture("data/inspection-ai/subset.csv");
const LABELS = ["卑語", "差別", "迷惑行為"];
const main = new URL("../../src/cli/main.ts", import.meta.url).pathname;

let dir: string;
let run: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-baseline-cal-"));
  run = join(dir, "run");
  // Through the CLI: the flag has to reach the baseline's config.
  await promisify(execFile)(
    process.execPath,
    [
      "--import",
      "tsx",
      main,
      "train",
      "--model",
      "tfidf-lr",
      "--data",
      DATA,
      "--preset",
      "inspection-ai",
      "--labels",
      LABELS.join(","),
      "--calibrate",
      "platt",
      "--valid-ratio",
      "0.3",
      "--bootstrap",
      "0",
      "--seed",
      "3",
      "--out",
      run,
    ],
    { encoding: "utf8" },
  );
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const readJson = async (f: string) => JSON.parse(await readFile(join(run, f), "utf8"));

describe("train --model tfidf-lr --calibrate platt", () => {
  it("stores calibration.json and tunes thresholds on calibrated validation probabilities", async () => {
    assert.ok(existsSync(join(run, RUN_FILES.calibration)), "calibration.json written");
    const cal = (await readJson(RUN_FILES.calibration)) as Calibration;
    assert.equal(cal.method, "platt");
    assert.deepEqual(cal.labels, LABELS);
    assert.equal((await readJson(RUN_FILES.config)).train.calibrate, "platt");
    // Platt scaling moved every label it could fit (one left as is keeps scale 1, bias 0, named).
    assert.deepEqual(cal.notes, []);
    cal.scale.forEach((s, j) => {
      assert.ok(s > 0 && (s !== 1 || cal.bias[j] !== 0), LABELS[j]);
      assert.ok((cal.logLoss.after[j] as number) <= (cal.logLoss.before[j] as number) + 1e-12);
    });

    const clf = await loadClassifier(run);
    const manifest = await readJson(RUN_FILES.manifest);
    const data = await loadDataset(DATA, schemaFromOptions({ preset: "inspection-ai", labels: LABELS }));
    const byId = new Map(data.records.map((r) => [r.id, r]));
    const validRows = (manifest.splits.valid as string[]).map((id) => {
      const r = byId.get(id);
      assert.ok(r, `valid id ${id} is in the data`);
      return r;
    });
    const validProbs = await clf.probs(validRows.map((r) => r.text));
    const tuned = tuneThresholds(
      validProbs,
      validRows.map((r) => r.labels),
      { minPositives: MIN_TUNING_POSITIVES },
    );
    const { thresholds } = await readJson(RUN_FILES.thresholds);
    assert.deepEqual(thresholds, tuned);
    assert.ok(
      thresholds.some((t: number) => t !== 0.5),
      "some label had enough validation positives to tune",
    );
    await clf.close();
  });

  it("loadClassifier applies it: the run's test predictions, eval, predict and serve agree", async () => {
    const rows = (await readFile(join(run, RUN_FILES.evalPredictions), "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { text: string; probs: Record<string, number> });
    const texts = rows.slice(0, 20).map((r) => r.text);
    const clf = await loadClassifier(run);
    const probs = await clf.probs(texts);
    const raw = (await loadTfidfLr(join(run, "model"))).probs(texts);
    const cal = (await readJson(RUN_FILES.calibration)) as Calibration;
    texts.forEach((_, i) => {
      LABELS.forEach((l, j) => {
        const want =
          1 / (1 + Math.exp(-(cal.scale[j] * Math.log(raw[i][j] / (1 - raw[i][j])) + cal.bias[j])));
        assert.ok(Math.abs(probs[i][j] - want) < 1e-9, `${l}: calibrated`);
        assert.ok(Math.abs(probs[i][j] - raw[i][j]) > 1e-6, `${l}: differs from the raw model`);
        assert.ok(Math.abs(probs[i][j] - rows[i].probs[l]) < 1e-12, `${l}: predictions/eval.jsonl`);
      });
    });

    const input = join(dir, "texts.txt");
    await writeFile(input, `${texts.slice(0, 3).join("\n")}\n`);
    await predictFile(clf, { input, out: join(dir, "pred.jsonl") });
    const pred = (await readFile(join(dir, "pred.jsonl"), "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { probs: Record<string, number> });
    pred.forEach((p, i) => {
      LABELS.forEach((l, j) => {
        assert.ok(Math.abs(p.probs[l] - probs[i][j]) <= 5e-7, `predict ${l}`); // written to 6 digits
      });
    });
    const server = await createServer(clf, { port: 0 });
    try {
      const r = await fetch(`${server.url}/v1/classify`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ texts: [texts[0]] }),
      });
      const body = (await r.json()) as { results: { probs: Record<string, number> }[] };
      LABELS.forEach((l, j) => {
        assert.ok(Math.abs(body.results[0].probs[l] - probs[0][j]) <= 5e-7, `serve ${l}`);
      });
    } finally {
      await server.close();
    }
    await clf.close();

    const ev = await evaluateRun(run, DATA, { outDir: join(dir, "eval"), bootstrap: 0 });
    assert.ok(ev.rows > 0);
    const [first] = (await readFile(join(dir, "eval", "predictions.jsonl"), "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { text: string; probs: Record<string, number> });
    const again = await loadClassifier(run);
    const [p] = await again.probs([first.text]);
    await again.close();
    LABELS.forEach((l, j) => {
      assert.ok(Math.abs(p[j] - first.probs[l]) < 1e-12, l);
    });
  });

  it("refuses --calibrate without a validation split, before writing anything", async () => {
    const out = join(dir, "no-valid");
    await assert.rejects(
      train(
        {
          model: "tfidf-lr",
          data: DATA,
          preset: "inspection-ai",
          labels: LABELS,
          validRatio: 0,
          calibrate: "temperature",
          out,
        },
        { progress: "quiet" },
      ),
      /--calibrate temperature needs --valid-ratio > 0/,
    );
    assert.ok(!existsSync(out));
  });
});
