// The prototype's label_rate_analysis.py numbers, reproduced exactly on the seed-stats fixture.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  analysisTables,
  analyze,
  formatAnalysisText,
  lengthStats,
  quantile,
  rateLines,
  rateLinesAmongAny,
} from "../../src/data/analyze.js";
import {
  formatHistogram,
  formatRateLine,
  percent,
  pyFixed,
  pyRepr,
  renderCsvTable,
} from "../../src/data/format.js";
import { type DataRecord, loadDataset } from "../../src/data/load.js";
import { llmjpToxicitySchema } from "../../src/data/schema.js";
import { fixture } from "../fixture.js";

const FIXTURE = fixture("llmjp-v2-seed-stats.jsonl");

/** The prototype's printed lines over the 1,882 rows with any positive label. */
export const PROTOTYPE_RATE_LINES = [
  "'obscene': yes..63.39%(1193), no..36.61%(689)",
  "'discriminatory': yes..22.21%(418), no..77.79%(1464)",
  "'violent': yes..8.98%(169), no..91.02%(1713)",
  "'illegal': yes..3.24%(61), no..96.76%(1821)",
  "'personal': yes..2.18%(41), no..97.82%(1841)",
  "'corporate': yes..22.48%(423), no..77.52%(1459)",
  "'others': yes..1.54%(29), no..98.46%(1853)",
];
export const PROTOTYPE_HISTOGRAM =
  "{'0': 1965, '1': 1468, '2': 382, '3': 28, '4': 3, '5': 0, '6': 1, '7': 0}";

describe("analyze on the LLM-jp seed-stats fixture", async () => {
  const ds = await loadDataset(FIXTURE, llmjpToxicitySchema());
  const result = analyze(ds.records, ds.labels);

  it("histogram of positives per row", () => {
    assert.equal(result.rows, 3847);
    assert.deepEqual(result.positivesPerRow, [1965, 1468, 382, 28, 3, 0, 1, 0]);
    assert.equal(formatHistogram(result.positivesPerRow), PROTOTYPE_HISTOGRAM);
    assert.equal(result.nonePositive, 1965);
    assert.equal(result.anyPositive, 1882);
  });

  it("per-label rates over rows with any positive, in the prototype's format", () => {
    const expected: [string, number, string][] = [
      ["obscene", 1193, "63.39"],
      ["discriminatory", 418, "22.21"],
      ["violent", 169, "8.98"],
      ["illegal", 61, "3.24"],
      ["personal", 41, "2.18"],
      ["corporate", 423, "22.48"],
      ["others", 29, "1.54"],
    ];
    for (const [name, count, pct] of expected) {
      const s = result.perLabel.find((p) => p.name === name);
      assert.equal(s?.positive, count, name);
      assert.equal(s?.negativeAmongAny, 1882 - count, name);
      assert.equal(percent(s?.positive ?? 0, result.anyPositive), pct, name);
    }
    assert.deepEqual(rateLinesAmongAny(result), PROTOTYPE_RATE_LINES);
  });

  it("rates over all rows", () => {
    assert.equal(rateLines(result)[0], "'obscene': yes..31.01%(1193), no..68.99%(2654)");
    assert.equal(result.perLabel[0]?.negative, 2654);
  });

  it("co-occurrence: symmetric, diagonal = positives, off-diagonal consistent with the histogram", () => {
    const c = result.cooccurrence;
    for (let i = 0; i < 7; i++) {
      assert.equal(c[i]?.[i], result.perLabel[i]?.positive);
      for (let j = 0; j < 7; j++) assert.equal(c[i]?.[j], c[j]?.[i]);
    }
    // Sum over pairs i<j of rows positive for both = Σ_k C(k,2) × rows with k positives.
    let pairs = 0;
    for (let i = 0; i < 7; i++) for (let j = i + 1; j < 7; j++) pairs += c[i]?.[j] ?? 0;
    const expectedPairs = result.positivesPerRow.reduce((s, n, k) => s + (n * k * (k - 1)) / 2, 0);
    assert.equal(pairs, expectedPairs);
  });

  it("overall label distribution", () => {
    assert.deepEqual(result.overall, [
      { value: "nontoxic", count: 2061 },
      { value: "toxic", count: 1698 },
      { value: "has_toxic_expression", count: 88 },
    ]);
    assert.equal(result.overallMissing, 0);
  });

  it("the text report leads with the prototype's lines", () => {
    const text = formatAnalysisText(result);
    assert.ok(text.includes(`positive labels per row: ${PROTOTYPE_HISTOGRAM}\n`));
    assert.ok(text.includes(PROTOTYPE_RATE_LINES.join("\n")));
    assert.ok(text.includes("rows with no positive label: 1965 (51.08%), with at least one: 1882 (48.92%)"));
  });

  it("tables", () => {
    const t = analysisTables(result);
    assert.deepEqual(Object.keys(t).sort(), [
      "cooccurrence",
      "labels",
      "overall",
      "positives-per-row",
      "text-length",
    ]);
    const csv = renderCsvTable(t.labels as never);
    assert.match(csv, /^label,yes,no,yes %,yes \(rows with any positive: 1882\),no \(any\),yes % \(any\)\n/);
    assert.equal(
      renderCsvTable({ title: "", headers: ["a", "b"], rows: [['x, "y"', "line\nbreak"]] }),
      'a,b\n"x, ""y""","line\nbreak"\n',
    );
    assert.ok(csv.includes("obscene,1193,2654,31.01,1193,689,63.39\n"));
  });
});

describe("analysis details", () => {
  const rec = (text: string, labels: number[], overall?: string): DataRecord => ({
    id: text,
    text,
    labels,
    raw: {},
    line: 1,
    ...(overall ? { overall } : {}),
  });

  it("quantiles interpolate like numpy; lengths count code points", () => {
    assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
    assert.equal(quantile([10, 20, 30, 40, 50], 0.9), 46);
    const s = lengthStats([5, 1, 3]);
    assert.deepEqual([s.min, s.median, s.max, s.mean, s.count], [1, 3, 5, 3, 3]);
    const r = analyze([rec("ab😀", [1, 0]), rec("abcde", [0, 0]), rec("あいうえおか", [1, 1])], ["x", "y"]);
    assert.equal(r.textLength.all.min, 3); // the emoji counts once
    assert.equal(r.textLength.perLabel[0]?.median, 4.5);
    assert.equal(r.textLength.perLabel[1]?.count, 1);
    assert.equal(r.overall, undefined);
    assert.equal(r.overallMissing, 3);
  });

  it("label count mismatch is an error", () => {
    assert.throws(() => analyze([rec("a", [1])], ["x", "y"]), /has 1 labels, expected 2/);
  });

  it("numbers print like Python's format()", () => {
    assert.equal(pyFixed(0.125, 2), "0.12"); // exact tie → even
    assert.equal(pyFixed(0.375, 2), "0.38");
    assert.equal(pyFixed(2.675, 2), "2.67"); // binary value is below the tie
    assert.equal(pyFixed(99.995, 2), "100.00"); // 99.9950000000000045…
    assert.equal(pyFixed(0, 2), "0.00");
    assert.equal(pyFixed(-1.5, 0), "-2");
    assert.equal(percent(1, 3), "33.33");
    assert.equal(percent(0, 0), "0.00");
    assert.equal(pyRepr("it's"), `"it's"`);
    assert.equal(pyRepr("卑語"), "'卑語'");
    assert.equal(formatRateLine("a", 1, 3), "'a': yes..25.00%(1), no..75.00%(3)");
  });
});
