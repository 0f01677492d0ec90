// The tfidf-lr baseline in the LoRA workflow: `train({ model: "tfidf-lr" })` writes the same run
// directory, and eval / predict / serve / report / report --compare take it like any run.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { loadTfidfLr, TFIDF_LR_FILES } from "../../src/baseline/model.js";
import { runQuantSpec } from "../../src/cluster/jobs.js";
import { predictFileOnQueue } from "../../src/cluster/predict.js";
import { parseRedisUrl } from "../../src/cluster/redis.js";
import { loadClassifier } from "../../src/predict/classifier.js";
import { evaluateRun } from "../../src/predict/evaluate.js";
import { predictFile } from "../../src/predict/predict.js";
import { buildComparison, buildReport } from "../../src/report/report.js";
import { RUN_FILES } from "../../src/run/types.js";
import { createServer } from "../../src/serve/server.js";
import { train } from "../../src/train/trainer.js";
import { fixture } from "../fixture.js";
import { writeSyntheticRun } from "../report/synthetic-run.js";

const DATA = fixture("data/inspection-ai/subset.csv");
const LABELS = ["卑語", "差別", "迷惑行為"];
const base = { model: "tfidf-lr", data: DATA, preset: "inspection-ai", labels: LABELS } as const;

let dir: string;
let run: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-baseline-"));
  run = join(dir, "tfidf");
  await train({ ...base, out: run, seed: 3 }, { progress: "quiet" });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function readJsonl(text: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

describe("train --model tfidf-lr", () => {
  it("writes a LoRA run's files, with the model in model/", async () => {
    for (const f of [
      RUN_FILES.config,
      RUN_FILES.manifest,
      RUN_FILES.metrics,
      RUN_FILES.thresholds,
      RUN_FILES.eval,
      RUN_FILES.evalPredictions,
      "log.csv",
      "log_tuned.csv",
      ...Object.values(TFIDF_LR_FILES).map((f) => `model/${f}`),
    ])
      assert.ok(existsSync(join(run, f)), f);
    const config = JSON.parse(await readFile(join(run, RUN_FILES.config), "utf8"));
    assert.equal(config.model, "tfidf-lr");
    assert.deepEqual(config.labels, LABELS);
    assert.deepEqual(config.train.ngram, [1, 3]);
    assert.equal(config.train.C, 4);
    const thresholds = JSON.parse(await readFile(join(run, RUN_FILES.thresholds), "utf8"));
    assert.equal(thresholds.tunedOn, "valid");
    const metrics = readJsonl(await readFile(join(run, RUN_FILES.metrics), "utf8"));
    const fits = metrics.filter((m) => m.type === "fit");
    assert.deepEqual(
      fits.map((f) => [f.label, f.converged]),
      LABELS.map((l) => [l, true]),
    );
    assert.equal(metrics.filter((m) => m.type === "eval").length, 1);
  });

  it("reloads exactly: the loaded classifier reproduces predictions/eval.jsonl bit for bit", async () => {
    const rows = readJsonl(await readFile(join(run, RUN_FILES.evalPredictions), "utf8")) as {
      text: string;
      probs: Record<string, number>;
    }[];
    const clf = await loadClassifier(run);
    const probs = await clf.probs(rows.map((r) => r.text));
    rows.forEach((r, i) => {
      assert.deepEqual(
        probs[i],
        LABELS.map((l) => r.probs[l]),
      );
    });
    const model = await loadTfidfLr(join(run, "model"));
    assert.ok(model.vectorizer.model.idf instanceof Float64Array);
    assert.deepEqual(
      clf.thresholds,
      JSON.parse(await readFile(join(run, RUN_FILES.thresholds), "utf8")).thresholds,
    );
  });

  it("is evaluated, predicted and served like any run", async () => {
    const ev = await evaluateRun(run, DATA, { outDir: join(dir, "eval") });
    assert.equal(ev.rows, 437);
    assert.ok(ev.at05.perLabel.差別.prAuc > 0.3, "the baseline has learnt something on its own data");

    const input = join(dir, "texts.txt");
    await writeFile(input, "お前みたいな奴は消えろ\nありがとう\n");
    const clf = await loadClassifier(run);
    const res = await predictFile(clf, { input, out: join(dir, "pred.jsonl") });
    assert.equal(res.rows, 2);

    const server = await createServer(clf, { port: 0 });
    try {
      const r = await fetch(`${server.url}/v1/classify`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ texts: ["ありがとう"] }),
      });
      const body = (await r.json()) as { results: { probs: Record<string, number> }[] };
      const [expected] = await clf.probs(["ありがとう"]);
      assert.deepEqual(
        LABELS.map((l) => body.results[0].probs[l]),
        expected,
      );
    } finally {
      await server.close();
    }
  });

  it("has a report, and report --compare puts it beside a LoRA run", async () => {
    const html = await readFile(await buildReport(run, { fontFiles: [] }), "utf8");
    assert.ok(html.includes("tfidf-lr"));
    await mkdir(join(dir, "cmp"), { recursive: true });
    const lora = join(dir, "cmp", "lora");
    await writeSyntheticRun(lora, { labels: LABELS, rows: 40, epochs: 1, stepsPerEpoch: 4 });
    const out = await buildComparison([lora, run], join(dir, "cmp", "compare.html"), { fontFiles: [] });
    const page = await readFile(out, "utf8");
    assert.ok(page.includes("tfidf") && page.includes("lora"));
  });
});

describe("tfidf-lr bad input: one clear line each", () => {
  const oneLine = (re: RegExp) => (err: Error) => {
    assert.match(err.message, re);
    assert.ok(!err.message.includes("\n"), err.message);
    return true;
  };

  it("an empty vocabulary after min_df", async () => {
    await assert.rejects(
      train({ ...base, out: join(dir, "bad-mindf"), minDf: 10_000 }, { progress: "quiet" }),
      oneLine(
        /empty vocabulary: no character n-gram occurs in at least min_df=10000 of the \d+ training texts/,
      ),
    );
  });

  it("a label with one class only, named, before anything is written", async () => {
    const out = join(dir, "bad-oneclass");
    await assert.rejects(
      train({ ...base, labels: ["出会い・プライバシー侵害"], out }, { progress: "quiet" }),
      oneLine(/label "出会い・プライバシー侵害": all \d+ training rows are negative/),
    );
    assert.ok(!existsSync(join(out, RUN_FILES.config)), "no half-written run blocks a retry");
  });

  it("a row whose text is not text, with file and line", async () => {
    const file = join(dir, "bad.jsonl");
    await writeFile(
      file,
      `${JSON.stringify({ id: 1, text: "ok", a: "yes" })}\n${JSON.stringify({ id: 2, text: 42, a: "no" })}\n`,
    );
    await assert.rejects(
      train(
        { model: "tfidf-lr", data: file, labels: ["a"], out: join(dir, "bad-text") },
        { progress: "quiet" },
      ),
      oneLine(/bad\.jsonl:2: field "text": text must be a string, got number/),
    );
  });

  const NO_BASE = /: a tfidf-lr model has no transformer base to quantize; leave (it|them) out$/;

  it("train() refuses base quantization and gradient checkpointing, named, before anything is written", async () => {
    const out = join(dir, "bad-quant");
    await assert.rejects(
      train({ ...base, out, quantize: "nf4" }, { progress: "quiet" }),
      oneLine(/^--quantize nf4 \(quantize\): a tfidf-lr model has no transformer base to quantize/),
    );
    await assert.rejects(
      train({ ...base, out, quantBlockSize: 32, doubleQuant: true }, { progress: "quiet" }),
      oneLine(/^--quant-block-size 32 \(quantBlockSize\), --double-quant \(doubleQuant\): .*leave them out$/),
    );
    await assert.rejects(
      train({ ...base, out, gradientCheckpointing: true }, { progress: "quiet" }),
      oneLine(
        /--gradient-checkpointing \(gradientCheckpointing\): a tfidf-lr model has no transformer layers/,
      ),
    );
    assert.ok(!existsSync(out), "nothing written");
    // Their defaults say nothing is quantized: accepted.
    await train({ ...base, out, quantize: "none", quantCache: true }, { progress: "quiet" });
    assert.ok(existsSync(join(out, RUN_FILES.config)));
  });

  it("loading, evaluating or predicting a tfidf-lr run refuses --quantize and --quant-kernel", async () => {
    await assert.rejects(loadClassifier(run, { quantize: "int8" }), oneLine(NO_BASE));
    await assert.rejects(loadClassifier(run, { quantKernel: "qgemm" }), oneLine(/^--quant-kernel qgemm/));
    await assert.rejects(
      evaluateRun(run, DATA, { outDir: join(dir, "eval-quant"), quantize: "nf4", doubleQuant: true }),
      oneLine(/^--quantize nf4 \(quantize\), --double-quant \(doubleQuant\): .*leave them out$/),
    );
    assert.ok(!existsSync(join(dir, "eval-quant")), "nothing written");
    await (await loadClassifier(run, { quantize: "none" })).close(); // nothing quantized: fine
    // What `predict --queue`, `tweets score --queue` and `worker` decide with, before Redis is
    // asked (no server listens on port 1: the refusal comes first).
    const config = JSON.parse(await readFile(join(run, RUN_FILES.config), "utf8"));
    assert.throws(
      () => runQuantSpec(config, { quantize: "int4", quantBlockSize: 64 }, run),
      oneLine(NO_BASE),
    );
    assert.equal(runQuantSpec(config, {}, run), null);
    await assert.rejects(
      predictFileOnQueue({
        redis: parseRedisUrl("redis://127.0.0.1:1"),
        run,
        input: DATA,
        out: join(dir, "queued.jsonl"),
        quantize: "nf4",
      }),
      oneLine(NO_BASE),
    );
  });

  it("the CLI shows the refusal: train --quantize, predict and eval --quant-kernel with a tfidf-lr run", async () => {
    const main = new URL("../../src/cli/main.ts", import.meta.url).pathname;
    const cli = (...args: string[]) =>
      promisify(execFile)(process.execPath, ["--import", "tsx", main, ...args], { encoding: "utf8" }).catch(
        (e: { stderr: string; code: number }) => e,
      ) as Promise<{ stderr: string; code?: number }>;
    const input = join(dir, "quant-texts.txt");
    await writeFile(input, "ありがとう\n");
    const out = join(dir, "q-train");
    const trained = await cli(
      "train",
      "--model",
      "tfidf-lr",
      "--data",
      DATA,
      "--out",
      out,
      "--quantize",
      "int4",
    );
    const predicted = await cli(
      "predict",
      "--run",
      run,
      "--input",
      input,
      "--out",
      join(dir, "q.jsonl"),
      "--quantize",
      "nf4",
    );
    const evaluated = await cli(
      "eval",
      "--run",
      run,
      "--data",
      DATA,
      "--out",
      join(dir, "q-eval"),
      "--quant-kernel",
      "qgemm",
    );
    assert.ok(!existsSync(out) && !existsSync(join(dir, "q-eval")), "nothing written");
    for (const [r, flag] of [
      [trained, "--quantize int4"],
      [predicted, "--quantize nf4"],
      [evaluated, "--quant-kernel qgemm"],
    ] as const) {
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.ok(r.stderr.includes(`${flag} (`), r.stderr);
      assert.match(r.stderr.trim(), NO_BASE);
    }
  });

  it("the CLI refuses LoRA flags with --model tfidf-lr", async () => {
    const main = new URL("../../src/cli/main.ts", import.meta.url).pathname;
    const r = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", main, "train", "--model", "tfidf-lr", "--data", DATA, "--lora-r", "8"],
      { encoding: "utf8" },
    ).catch((e: { stderr: string; code: number }) => e);
    assert.equal((r as { code?: number }).code, 1);
    assert.match((r as { stderr: string }).stderr, /--lora-r does not apply to --model tfidf-lr/);
  });
});
