import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, test } from "node:test";
import { loadDataset } from "../../src/data/load.js";
import { LLMJP_LABELS, llmjpToxicitySchema } from "../../src/data/schema.js";
import {
  DEMO_DATASET_PATH,
  DEMO_SEED,
  type DemoCategory,
  type DemoRecord,
  demoDatasetJsonl,
  generateDemoDataset,
} from "../../src/demo/data.js";

const FIELDS = ["id", "text", "label", ...LLMJP_LABELS];

describe("demo dataset", () => {
  const records = generateDemoDataset();

  test("the committed file equals the generator's output", async () => {
    const committed = await readFile(DEMO_DATASET_PATH, "utf8");
    assert.equal(committed, demoDatasetJsonl(generateDemoDataset(DEMO_SEED)));
  });

  test("300–500 rows in the LLM-jp schema, unique ids and texts", () => {
    assert.ok(records.length >= 300 && records.length <= 500, `${records.length} rows`);
    for (const r of records) {
      assert.deepEqual(Object.keys(r), FIELDS);
      assert.ok(["toxic", "nontoxic", "has_toxic_expression"].includes(r.label));
      for (const c of LLMJP_LABELS) assert.ok(r[c] === "yes" || r[c] === "no");
      assert.ok(r.text.length > 0 && r.text.length <= 80, r.text);
    }
    assert.equal(new Set(records.map((r) => r.id)).size, records.length);
    assert.equal(new Set(records.map((r) => r.text)).size, records.length);
  });

  test("labels are consistent: nontoxic has no category, the others at least one", () => {
    const yes = (r: DemoRecord) => LLMJP_LABELS.filter((c) => r[c] === "yes");
    for (const r of records) {
      if (r.label === "nontoxic") assert.deepEqual(yes(r), [], r.text);
      else assert.ok(yes(r).length >= 1 && yes(r).length <= 2, r.text);
      // Quoted expressions are always inside 「」.
      if (r.label === "has_toxic_expression") assert.match(r.text, /「.+」/);
    }
    // Every category has enough positives to learn from, and some rows mix two.
    for (const c of LLMJP_LABELS) {
      const n = records.filter((r) => r[c] === "yes").length;
      assert.ok(n >= 30, `${c}: ${n} positives`);
    }
    assert.ok(records.filter((r) => yes(r).length === 2).length >= 20);
    const byLabel = (l: string) => records.filter((r) => r.label === l).length;
    assert.deepEqual(
      [byLabel("toxic"), byLabel("has_toxic_expression"), byLabel("nontoxic")],
      [192, 48, 160],
    );
  });

  test("the same toxic phrase gives the same categories wherever it appears", () => {
    // A model can only learn the labels if they follow the words: check one phrase per category.
    const probes: [string, DemoCategory][] = [
      ["を殴ってやる", "violent"],
      ["海賊版サイト", "illegal"],
      ["は劣った種族だ", "discriminatory"],
      ["の社員は全員無能", "corporate"],
      ["えっちな自撮り", "obscene"],
      ["ほんとにアホだな", "personal"],
      ["チェーンメール", "others"],
    ];
    for (const [phrase, category] of probes) {
      const hits = records.filter((r) => r.text.includes(phrase));
      assert.ok(hits.length > 0, `no row contains ${phrase}`);
      for (const r of hits) assert.equal(r[category], "yes", r.text);
    }
  });

  test("deterministic per seed", () => {
    assert.deepEqual(generateDemoDataset(DEMO_SEED), records);
    assert.notDeepEqual(generateDemoDataset(DEMO_SEED + 1), records);
    assert.equal(generateDemoDataset(7, 120).length, 120);
  });

  test("loads with the data toolkit's llmjp-toxicity preset without errors or warnings", async () => {
    const ds = await loadDataset(DEMO_DATASET_PATH, llmjpToxicitySchema());
    assert.equal(ds.records.length, records.length);
    assert.deepEqual(ds.skipped, []);
    assert.deepEqual(ds.warnings, []);
    assert.deepEqual(ds.labels, [...LLMJP_LABELS]);
    assert.equal(ds.records[0]?.overall, records[0]?.label);
  });
});
