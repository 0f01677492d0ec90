// Rebalancing strategies: the prototype's files reproduced exactly, plus the general strategies.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { analyze, rateLines } from "../../src/data/analyze.js";
import { balance, parseStrategy } from "../../src/data/balance.js";
import { type DataRecord, loadDataset } from "../../src/data/load.js";
import { inspectionAiSchema, llmjpToxicitySchema } from "../../src/data/schema.js";
import { fixture } from "../fixture.js";

const FIXTURE = fixture("llmjp-v2-seed-stats.jsonl");

describe("balance on the LLM-jp seed-stats fixture", async () => {
  const ds = await loadDataset(FIXTURE, llmjpToxicitySchema());

  it("drop-all-negative alone: 1,882 rows", () => {
    assert.equal(balance(ds.records, ds.labels, "drop-all-negative").records.length, 1882);
  });

  it("drop-all-negative + keep-labels (4 labels): 1,839 rows with the prototype's rates", () => {
    const r = balance(
      ds.records,
      ds.labels,
      "drop-all-negative,keep-labels:obscene,discriminatory,violent,corporate",
    );
    assert.equal(r.records.length, 1839);
    assert.deepEqual(r.labels, ["obscene", "discriminatory", "violent", "corporate"]);
    assert.deepEqual(rateLines(analyze(r.records, r.labels)), [
      "'obscene': yes..64.87%(1193), no..35.13%(646)",
      "'discriminatory': yes..22.73%(418), no..77.27%(1421)",
      "'violent': yes..9.19%(169), no..90.81%(1670)",
      "'corporate': yes..23.00%(423), no..77.00%(1416)",
    ]);
    // Written in the other order, the result is the same: keep-labels always applies first.
    const swapped = balance(
      ds.records,
      ds.labels,
      "keep-labels:obscene,discriminatory,violent,corporate,drop-all-negative",
    );
    assert.deepEqual(
      swapped.records.map((x) => x.id),
      r.records.map((x) => x.id),
    );
  });

  it("prototype: 1,218 rows, obscene 609/609, discriminatory 418, corporate 423", () => {
    const r = balance(ds.records, ds.labels, "prototype", { seed: 42 });
    assert.equal(r.records.length, 1218);
    assert.deepEqual(r.labels, ["obscene", "discriminatory", "corporate"]);
    assert.deepEqual(rateLines(analyze(r.records, r.labels)), [
      "'obscene': yes..50.00%(609), no..50.00%(609)",
      "'discriminatory': yes..34.32%(418), no..65.68%(800)",
      "'corporate': yes..34.73%(423), no..65.27%(795)",
    ]);
    assert.deepEqual(
      r.steps.map((s) => [s.step, s.rowsAfter]),
      [
        ["keep-labels:obscene,discriminatory,corporate", 3847],
        ["drop-all-negative", 1802],
        ["equalize:obscene", 1218],
      ],
    );
    assert.equal(r.steps[2]?.note, "obscene 609/609");
  });

  it("the prototype's random deletions depend on the seed, and only on the seed", () => {
    const ids = (seed: number) =>
      balance(ds.records, ds.labels, "prototype", { seed })
        .records.map((x) => x.id)
        .join(",");
    assert.equal(ids(7), ids(7));
    assert.notEqual(ids(7), ids(8));
    const other = balance(ds.records, ds.labels, "prototype", { seed: 8 });
    assert.equal(other.records.length, 1218);
  });

  it("does not modify its input", () => {
    const before = JSON.stringify(ds.records.slice(0, 50));
    balance(ds.records, ds.labels, "prototype");
    assert.equal(JSON.stringify(ds.records.slice(0, 50)), before);
    assert.equal(ds.records.length, 3847);
  });

  it("target-ratio moves rates towards the target without deleting a positive of a label below it", () => {
    const start = analyze(ds.records, ds.labels);
    const r = balance(ds.records, ds.labels, "target-ratio", { ratio: 0.5, seed: 1 });
    const end = analyze(r.records, r.labels);
    const achieved = r.steps[0]?.achieved ?? {};
    const dist = (a: typeof start) => a.perLabel.reduce((s, p) => s + (p.rate - 0.5) ** 2, 0);
    assert.ok(dist(end) < dist(start));
    for (const [j, p] of end.perLabel.entries()) {
      assert.equal(achieved[p.name], p.rate);
      // Every label starts below 50%, so none of its positives may go (obscene ends above it).
      assert.equal(p.positive, start.perLabel[j]?.positive, p.name);
    }
    assert.match(r.steps[0]?.note ?? "", /^achieved rates \(target 0\.5\): obscene 63\.39%/);
    assert.match(
      r.steps[0]?.details?.[0] ?? "",
      /^obscene {2,}1193 -> 1193 positives, 31\.01% -> 63\.39% \(below the target at the start: none of its positive rows deleted\)$/,
    );
    // Same seed, same rows.
    const again = balance(ds.records, ds.labels, "target-ratio:0.5", { seed: 1 });
    assert.deepEqual(
      again.records.map((x) => x.id),
      r.records.map((x) => x.id),
    );
  });

  it("target-ratio above a label's rate deletes its positives only down to the target", () => {
    // a: 6 of 10 rows positive (above 0.3); b: 1 of 10 (below). Only a-only rows and negatives may go.
    const recs: DataRecord[] = [
      [1, 0],
      [1, 0],
      [1, 0],
      [1, 0],
      [1, 0],
      [1, 1],
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ].map((labels, k) => ({ id: String(k), text: "t", labels, raw: {}, line: k + 1 }));
    const r = balance(recs, ["a", "b"], "target-ratio:0.3");
    const pos = (j: number) => r.records.filter((x) => x.labels[j] === 1).length;
    assert.equal(pos(1), 1, "b keeps its positive");
    assert.ok(pos(0) / r.records.length >= 0.3, "a is not pushed below the target");
    assert.match(
      r.steps[0]?.details?.[0] ?? "",
      /^a {2}6 -> \d positives.*above the target at the start: \d positive rows? deleted\)$/,
    );
  });
});

describe("target-ratio on the inspection-ai posts (all labels rare)", async () => {
  const ds = await loadDataset(fixture("data/inspection-ai/subset.csv"), inspectionAiSchema());
  const positives = ds.labels.map((_, j) => ds.records.filter((r) => r.labels[j] === 1).length);
  const withPositive = ds.records.filter((r) => r.labels.some((v) => v === 1)).length;

  it("never deletes a positive row; a higher target never keeps more rows", () => {
    let previous = Number.POSITIVE_INFINITY;
    for (const ratio of [0.1, 0.2, 0.3, 0.5]) {
      const r = balance(ds.records, ds.labels, `target-ratio:${ratio}`);
      const kept = ds.labels.map((_, j) => r.records.filter((x) => x.labels[j] === 1).length);
      assert.deepEqual(kept, positives, `target ${ratio}: positives deleted`);
      // Deleting only negatives, Σ_j (p_j/n − r)² is least at n = Σp² / (r Σp), or at every
      // row with a positive when that is fewer.
      const sum = positives.reduce((s, p) => s + p, 0);
      const best = Math.max(withPositive, positives.reduce((s, p) => s + p * p, 0) / (ratio * sum));
      assert.ok(
        Math.abs(r.records.length - best) <= 1,
        `target ${ratio}: ${r.records.length} rows, want ~${best}`,
      );
      assert.ok(r.records.length <= previous, `target ${ratio} keeps more rows than a lower target`);
      previous = r.records.length;
      const never = r.steps[0]?.details?.find((d) => d.startsWith("違法行為"));
      assert.match(never ?? "", /no positive row: no deletion brings it nearer the target/);
    }
  });
});

describe("strategy strings", () => {
  it("parses composed strategies; keep-labels arguments run to the next strategy name", () => {
    assert.deepEqual(parseStrategy("drop-all-negative,keep-labels:a,b, c,target-ratio:0.4"), [
      { kind: "drop-all-negative" },
      { kind: "keep-labels", labels: ["a", "b", "c"] },
      { kind: "target-ratio", ratio: 0.4 },
    ]);
    assert.deepEqual(parseStrategy("prototype"), [
      { kind: "keep-labels", labels: ["obscene", "discriminatory", "corporate"] },
      { kind: "drop-all-negative" },
      { kind: "equalize", label: "obscene" },
    ]);
  });

  it("rejects bad strategies with clear messages", () => {
    assert.throws(() => parseStrategy("drop-negatives"), /unknown balance strategy "drop-negatives"/);
    assert.throws(() => parseStrategy("target-ratio:2"), /between 0 and 1/);
    assert.throws(() => parseStrategy("keep-labels"), /keep-labels needs labels/);
    assert.throws(() => parseStrategy(""), /empty/);
    const recs: DataRecord[] = [{ id: "1", text: "x", labels: [1, 0], raw: {}, line: 1 }];
    assert.throws(() => balance(recs, ["a", "b"], "keep-labels:z"), /unknown label "z"/);
    assert.throws(() => balance(recs, ["a", "b"], "keep-labels:a,keep-labels:b"), /only once/);
  });

  it("equalize stops when too few rows are positive for the label alone", () => {
    const recs: DataRecord[] = [
      [1, 1],
      [1, 1],
      [1, 0],
      [0, 1],
    ].map((labels, k) => ({ id: String(k), text: "t", labels, raw: {}, line: k + 1 }));
    const r = balance(recs, ["a", "b"], "equalize:a");
    assert.equal(r.records.length, 3);
    assert.match(r.steps[0]?.note ?? "", /^a 2\/1 \(only 1 rows were positive for a alone\)$/);
  });

  it("equalize that deletes nothing says why", () => {
    const recs = (rows: number[][]): DataRecord[] =>
      rows.map((labels, k) => ({ id: String(k), text: "t", labels, raw: {}, line: k + 1 }));
    const balanced = balance(
      recs([
        [1, 0],
        [0, 0],
        [0, 1],
      ]),
      ["a", "b"],
      "equalize:a",
    );
    assert.equal(balanced.records.length, 3);
    assert.match(balanced.steps[0]?.note ?? "", /nothing deleted, a is already at most 50% positive/);
    const shared = balance(
      recs([
        [1, 1],
        [1, 1],
        [1, 1],
        [0, 0],
      ]),
      ["a", "b"],
      "equalize:a",
    );
    assert.equal(shared.records.length, 4);
    assert.match(shared.steps[0]?.note ?? "", /nothing deleted, no row is positive for a alone/);
  });
});
