// Training really learns, re-sampling is seeded, and gradient accumulation works.
import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createRng } from "../../src/data/random.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { train } from "../../src/train/trainer.js";
import { DEMO_DATA, demoTexts, tinyModel } from "./helpers.js";

let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-learn-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A synthetic multi-label task whose labels are a function of the tokens: label j is 1 exactly when
 * its keyword occurs in the text, among filler words.
 */
function syntheticTask(n: number, seed: number): { rows: object[]; texts: string[] } {
  const rng = createRng(seed);
  const keywords = ["犬", "猫", "鳥"];
  const filler = ["あ", "い", "う", "え", "お", "か", "き", "く", "け", "こ", "さ", "し"];
  const rows: object[] = [];
  const texts: string[] = [];
  for (let i = 0; i < n; i++) {
    const present = keywords.map(() => (rng.next() < 0.4 ? 1 : 0));
    const words = Array.from({ length: 4 + rng.int(8) }, () => rng.pick(filler));
    present.forEach((p, j) => {
      if (p) words.splice(rng.int(words.length + 1), 0, keywords[j]);
    });
    const text = words.join("");
    texts.push(text);
    rows.push({
      id: `s${i}`,
      text,
      dog: present[0] ? "yes" : "no",
      cat: present[1] ? "yes" : "no",
      bird: present[2] ? "yes" : "no",
    });
  }
  return { rows, texts };
}

test("a tiny model learns a synthetic token task to macro-F1 >= 0.9", async () => {
  const { rows, texts } = syntheticTask(600, 11);
  const data = join(dir, "synthetic.jsonl");
  writeFileSync(data, rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
  const model = await tinyModel(join(dir, "model-syn"), texts, "llama", { hidden: 32, seed: 5 });
  const r = await train(
    {
      model,
      data,
      labels: ["dog", "cat", "bird"],
      epochs: 10,
      batchSize: 16,
      lr: 1e-2,
      loraR: 8,
      loraAlpha: 16,
      loraDropout: 0,
      maxLength: 32,
      warmupRatio: 0.1,
      scheduler: "linear",
      testRatio: 0.25,
      validRatio: 0.15,
      out: join(dir, "run-syn"),
    },
    { progress: "quiet" },
  );
  assert.ok(r.eval.macroF1 >= 0.9, `macro-F1 ${r.eval.macroF1}`);
});

function epochIds(runDir: string): string[][] {
  return readFileSync(join(runDir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((m) => m.type === "epoch")
    .map((m) => m.ids as string[]);
}

test("--resample-each-epoch draws a different balanced set each epoch, the same ones for the same seed", async () => {
  const model = await tinyModel(join(dir, "model-demo"), demoTexts(), "bert", { hidden: 16, layers: 1 });
  const cfg = {
    model,
    data: DEMO_DATA,
    epochs: 3,
    batchSize: 32,
    maxLength: 24,
    resampleEachEpoch: "target-ratio:0.15",
    loraR: 2,
    loraAlpha: 4,
    gradAccum: 2,
  };
  await train({ ...cfg, out: join(dir, "rs-a"), seed: 7 }, { progress: "quiet" });
  await train({ ...cfg, out: join(dir, "rs-b"), seed: 7 }, { progress: "quiet" });
  await train({ ...cfg, out: join(dir, "rs-c"), seed: 8 }, { progress: "quiet" });
  const a = epochIds(join(dir, "rs-a"));
  const b = epochIds(join(dir, "rs-b"));
  const c = epochIds(join(dir, "rs-c"));
  assert.equal(a.length, 3);
  assert.notDeepEqual(a[0], a[1]);
  assert.notDeepEqual(a[1], a[2]);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a[0], c[0]);
  // Each epoch's set is a subset of the training split (re-sampled, never the test rows).
  const manifest = JSON.parse(readFileSync(join(dir, "rs-a", "manifest.json"), "utf8"));
  const trainIds = new Set(manifest.splits.train as string[]);
  for (const ids of a) assert.ok(ids.every((id) => trainIds.has(id)));
  assert.ok(a[0].length < trainIds.size);
});

/**
 * A tiny model with the default dropouts (model 0.1, LoRA 0.05) and a 2-epoch config on the demo
 * data: dropout masks are seeded, so runs are reproducible bit for bit.
 */
async function deterministicRun(name: string) {
  const model = await tinyModel(join(dir, name), demoTexts(), "bert", { hidden: 16, layers: 1 });
  return {
    model,
    data: DEMO_DATA,
    epochs: 2,
    batchSize: 16,
    maxLength: 24,
    loraR: 2,
    loraAlpha: 4,
  };
}

const adapterBytes = (run: string) => readFileSync(join(dir, run, "adapter", "adapter_model.safetensors"));

test("dropout is seeded: the same config twice gives bit-identical adapters, another seed does not", async () => {
  const cfg = { ...(await deterministicRun("model-seeded")), gradAccum: 2, seed: 5 };
  await train({ ...cfg, out: join(dir, "seeded-a") }, { progress: "quiet" });
  await train({ ...cfg, out: join(dir, "seeded-b") }, { progress: "quiet" });
  await train({ ...cfg, seed: 6, out: join(dir, "seeded-c") }, { progress: "quiet" });
  assert.ok(adapterBytes("seeded-a").equals(adapterBytes("seeded-b")), "same seed, different adapters");
  assert.ok(!adapterBytes("seeded-a").equals(adapterBytes("seeded-c")), "another seed, same adapter");
});

test("resume: an interrupted run continues and ends like an uninterrupted one", async () => {
  // With dropout on: masks depend on the seed and the step, not on the session.
  const cfg = { ...(await deterministicRun("model-resume")), seed: 3 };
  const full = await train({ ...cfg, out: join(dir, "full") }, { progress: "quiet" });
  const ac = new AbortController();
  ac.abort(); // stops after the first step
  const part = await train({ ...cfg, out: join(dir, "part") }, { progress: "quiet", signal: ac.signal });
  assert.equal(part.interrupted, true);
  assert.equal(part.steps, 1);
  // A crash after the checkpoint would leave lines for steps that run again on resume.
  appendFileSync(
    join(dir, "part", "metrics.jsonl"),
    `${JSON.stringify({ type: "step", step: 2, loss: 9 })}\n`,
  );
  const resumed = await train({ ...cfg, out: join(dir, "part"), resume: true }, { progress: "quiet" });
  assert.equal(resumed.steps, full.steps);
  // The resumed run's log has each step once, with the losses of the uninterrupted run.
  const steps = (run: string) =>
    readFileSync(join(dir, run, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .filter((m) => m.type === "step")
      .map((m) => [m.step, m.loss]);
  assert.deepEqual(steps("part"), steps("full"));
  assert.ok(adapterBytes("part").equals(adapterBytes("full")), "resumed adapter differs");
  for (const l of full.labels) assert.equal(resumed.eval.perLabel[l].prAuc, full.eval.perLabel[l].prAuc, l);
});

test("--eval-every N steps with --early-stopping stops when the metric stops improving", async () => {
  const model = await tinyModel(join(dir, "model-es"), demoTexts(), "bert", {
    hidden: 16,
    layers: 1,
    dropout: 0,
  });
  // A vanishing learning rate keeps macro-F1 exactly where it started: the second evaluation
  // does not improve on the first, so patience 1 ends the run there.
  const r = await train(
    {
      model,
      data: DEMO_DATA,
      epochs: 3,
      batchSize: 16,
      maxLength: 24,
      loraR: 2,
      loraAlpha: 4,
      loraDropout: 0,
      lr: 1e-12,
      evalEvery: 3,
      earlyStopping: 1,
      out: join(dir, "es"),
    },
    { progress: "quiet" },
  );
  const evals = readFileSync(join(dir, "es", "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((m) => m.type === "eval");
  assert.deepEqual(
    evals.map((e) => e.step),
    [3, 6],
  );
  assert.equal(r.steps, 6);
  assert.equal(r.bestStep, 3);
  assert.ok(existsSync(join(dir, "es", "eval.json")), "a stopped run is still evaluated on the test split");
});

test("low-memory mode (sessions swapped for evaluation) trains and evaluates exactly like the default", async () => {
  const cfg = { ...(await deterministicRun("model-lowmem")), gradAccum: 2 };
  const normal = await train({ ...cfg, out: join(dir, "lm-normal") }, { progress: "quiet" });
  const low = await train({ ...cfg, out: join(dir, "lm-low") }, { progress: "quiet", lowMemory: true });
  assert.equal(low.steps, normal.steps);
  assert.deepEqual(low.thresholds, normal.thresholds);
  for (const l of normal.labels) assert.equal(low.eval.perLabel[l].prAuc, normal.eval.perLabel[l].prAuc, l);
});

test("accumulation weighs rows: batch 24 × accum 1 equals batch 12 × accum 2 with a short tail", async () => {
  const model = await tinyModel(join(dir, "model-rows"), demoTexts(), "bert", {
    hidden: 16,
    layers: 1,
    dropout: 0,
  });
  // File order, no validation split: both runs see the same rows in every optimizer step, and the
  // last step of each epoch is short (a 12-row and a 4-row micro-batch for 280 training rows).
  const cfg = {
    model,
    data: DEMO_DATA,
    testRatio: 0.3,
    validRatio: 0,
    epochs: 2,
    maxLength: 24,
    loraR: 2,
    loraAlpha: 4,
    loraDropout: 0,
    lr: 5e-3,
    warmupRatio: 0,
    shuffle: false,
    bucketing: false,
  };
  await train({ ...cfg, batchSize: 24, gradAccum: 1, out: join(dir, "rows-24x1") }, { progress: "quiet" });
  await train({ ...cfg, batchSize: 12, gradAccum: 2, out: join(dir, "rows-12x2") }, { progress: "quiet" });
  const manifest = JSON.parse(readFileSync(join(dir, "rows-24x1", "manifest.json"), "utf8"));
  const tail = manifest.splits.train.length % 24;
  assert.ok(tail > 12 && tail < 24, `the last step must hold a full and a short micro-batch (tail ${tail})`);
  const a = await readSafetensors(join(dir, "rows-24x1", "adapter", "adapter_model.safetensors"));
  const b = await readSafetensors(join(dir, "rows-12x2", "adapter", "adapter_model.safetensors"));
  let worst = 0;
  for (const [k, t] of a) {
    const u = b.get(k);
    assert.ok(u, k);
    for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(t.data[i] - u.data[i]));
  }
  assert.ok(worst < 2e-6, `adapters differ by ${worst}`);
});
