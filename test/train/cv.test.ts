import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadDataset } from "../../src/data/load.js";
import { llmjpToxicitySchema } from "../../src/data/schema.js";
import { buildCvReport } from "../../src/report/cv-report.js";
import { assignFolds, crossValidate } from "../../src/train/cv.js";
import { DEMO_DATA } from "./helpers.js";

describe("fold assignment", () => {
  test("the folds partition the rows and keep every label's rate", async () => {
    const ds = await loadDataset(DEMO_DATA, llmjpToxicitySchema());
    const labels = ds.records.map((r) => r.labels);
    const k = 5;
    const fold = assignFolds(labels, k, 42);
    assert.equal(fold.length, labels.length);
    const sizes = Array.from({ length: k }, (_, f) => fold.filter((x) => x === f).length);
    assert.deepEqual(sizes, [80, 80, 80, 80, 80]); // 400 rows: every row in exactly one fold
    ds.labels.forEach((name, j) => {
      const total = labels.reduce((s, r) => s + (r[j] as number), 0);
      for (let f = 0; f < k; f++) {
        const pos = labels.filter((r, i) => fold[i] === f && r[j] === 1).length;
        // The stratifier's guarantee: each fold within one row of its share of the positives.
        assert.ok(Math.abs(pos - total / k) <= 1, `${name} fold ${f}: ${pos} of ${total}`);
      }
    });
    assert.deepEqual(assignFolds(labels, k, 42), fold, "same seed, same folds");
    assert.notDeepEqual(assignFolds(labels, k, 7), fold);
    assert.throws(() => assignFolds(labels, 1, 42), /folds must be an integer ≥ 2/);
  });
});

describe("crossValidate (tfidf-lr baseline)", () => {
  let dir: string;
  const config = () => ({
    model: "tfidf-lr",
    data: DEMO_DATA,
    preset: "llmjp-toxicity",
    bootstrap: 50,
    out: join(dir, "cv"),
  });
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "toxlora-cv-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("--quantize with tfidf-lr is refused in one line before anything is written", async () => {
    const out = join(dir, "cv-quant");
    await assert.rejects(
      crossValidate({ ...config(), out, quantize: "nf4" }, 3, { progress: "quiet" }),
      /^Error: --quantize nf4 \(quantize\): a tfidf-lr model has no transformer base to quantize; leave it out$/,
    );
    assert.ok(!existsSync(out));
  });

  test("one run per fold, every row tested once, cv.json and a report", async () => {
    const r = await crossValidate(config(), 3, { progress: "quiet" });
    assert.equal(r.interrupted, false);
    const cv = JSON.parse(readFileSync(join(r.dir, "cv.json"), "utf8"));
    assert.equal(cv.folds, 3);
    assert.equal(cv.rows, 400);
    // The folds' test rows are disjoint and cover the data.
    const ids = [1, 2, 3].flatMap(
      (k) => JSON.parse(readFileSync(join(r.dir, `fold-${k}`, "manifest.json"), "utf8")).splits.test,
    );
    assert.equal(ids.length, 400);
    assert.equal(new Set(ids).size, 400);
    // Mean ± sd is over the folds' own numbers.
    const f1s = cv.perFold.map((f: { macroF1: number }) => f.macroF1);
    const mean = f1s.reduce((a: number, b: number) => a + b, 0) / 3;
    assert.ok(Math.abs(cv.meanSd.macro.f1.mean - mean) < 1e-12);
    assert.ok(cv.meanSd.macro.f1.sd >= 0);
    // Pooled F1 from the summed confusion tables.
    const m = cv.pooled.perLabel.obscene;
    assert.equal(m.tp + m.fp + m.fn + m.tn, 400);
    assert.ok(Math.abs(m.f1 - (2 * m.tp) / (2 * m.tp + m.fp + m.fn)) < 1e-12);
    const html = readFileSync(await buildCvReport(r.dir), "utf8");
    assert.ok(html.includes("3-fold cross-validation"));
    assert.ok(html.includes("Pooled out-of-fold"));
    // Local paths (the folds, the data file) relative to the page's folder; showPaths keeps them.
    assert.ok(!html.includes(dir), "no absolute path left");
    assert.ok(html.includes(`<p>${relative(r.dir, DEMO_DATA)} · 400 rows`), "the data file, relative");
    assert.match(html, /<td class="n">1<\/td><td>fold-1<\/td>/);
    const shown = readFileSync(
      await buildCvReport(r.dir, join(dir, "shown.html"), { showPaths: true }),
      "utf8",
    );
    assert.ok(
      shown.includes(`<td>${join(r.dir, "fold-1")}</td>`) && shown.includes(`<p>${DEMO_DATA} · 400 rows`),
    );
  });

  test("a rerun resumes: finished folds are kept, a missing one is trained again", async () => {
    const before = readFileSync(join(dir, "cv", "cv.json"), "utf8");
    rmSync(join(dir, "cv", "fold-2", "eval.json"));
    const statuses: string[] = [];
    const r = await crossValidate(config(), 3, {
      progress: "quiet",
      onFold: (k, _n, s) => statuses.push(`${k}:${s}`),
    });
    assert.deepEqual(statuses, ["1:complete", "2:training", "3:complete"]);
    assert.equal(readFileSync(join(r.dir, "cv.json"), "utf8"), before, "the same numbers again");
    await assert.rejects(
      crossValidate({ ...config(), seed: 1 }, 3, { progress: "quiet" }),
      /holds a different cross-validation/,
    );
    assert.ok(existsSync(join(dir, "cv", "cv-plan.json")));
  });
});
