// Iterative stratification: exact sizes, label rates kept in every split, deterministic per seed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { balance } from "../../src/data/balance.js";
import { type DataRecord, loadDataset } from "../../src/data/load.js";
import { createRng, deriveSeed } from "../../src/data/random.js";
import { llmjpToxicitySchema } from "../../src/data/schema.js";
import { iterativeStratification, split, splitRateTable, splitSizes } from "../../src/data/split.js";
import { fixture } from "../fixture.js";

const FIXTURE = fixture("llmjp-v2-seed-stats.jsonl");

function rate(records: DataRecord[], j: number): number {
  return records.filter((r) => r.labels[j] === 1).length / records.length;
}

describe("split", async () => {
  const ds = await loadDataset(FIXTURE, llmjpToxicitySchema());
  const proto = balance(ds.records, ds.labels, "prototype", { seed: 42 });

  it("--test 0.3 of the prototype's file: 852 / 366 rows, each label within ±2 points", () => {
    for (const seed of [42, 1, 2, 3]) {
      const s = split(proto.records, { test: 0.3, seed });
      assert.equal(s.train.length, 852);
      assert.equal(s.test.length, 366);
      assert.equal(s.valid.length, 0);
      for (let j = 0; j < proto.labels.length; j++) {
        const diff = Math.abs(rate(s.train, j) - rate(s.test, j)) * 100;
        assert.ok(diff <= 2, `seed ${seed}, ${proto.labels[j]}: ${diff.toFixed(2)} points apart`);
      }
    }
  });

  it("every row lands in exactly one split; deterministic per seed", () => {
    const a = split(ds.records, { test: 0.2, valid: 0.1, seed: 5 });
    const b = split(ds.records, { test: 0.2, valid: 0.1, seed: 5 });
    const c = split(ds.records, { test: 0.2, valid: 0.1, seed: 6 });
    const ids = (x: DataRecord[]) => x.map((r) => r.id);
    assert.deepEqual(ids(a.test), ids(b.test));
    assert.deepEqual(ids(a.valid), ids(b.valid));
    assert.notDeepEqual(ids(a.test), ids(c.test));
    assert.deepEqual([a.train.length, a.test.length, a.valid.length], [2692, 770, 385]);
    const all = [...ids(a.train), ...ids(a.test), ...ids(a.valid)].sort();
    assert.deepEqual(all, ids(ds.records).sort());
    for (let j = 0; j < ds.labels.length; j++) {
      for (const part of [a.train, a.test, a.valid]) {
        assert.ok(Math.abs(rate(part, j) - rate(ds.records, j)) * 100 <= 2, ds.labels[j]);
      }
    }
  });

  it("per-split rate table", () => {
    const s = split(proto.records, { test: 0.3, seed: 42 });
    const t = splitRateTable(s, proto.labels);
    assert.deepEqual(t.headers, ["label", "train (852)", "test (366)"]);
    assert.match(t.rows[1]?.[1] ?? "", /^\d+\.\d\d% \(\d+\)$/);
  });

  it("split sizes follow scikit-learn (test = ceil) and reject bad fractions", () => {
    assert.deepEqual(splitSizes(1218, 0.3), [852, 366, 0]);
    assert.deepEqual(splitSizes(100, 0.3), [70, 30, 0]);
    assert.deepEqual(splitSizes(10, 0.25, 0.25), [4, 3, 3]);
    assert.throws(() => splitSizes(10, 0), /--test/);
    assert.throws(() => splitSizes(10, 0.6, 0.4), /leave rows for training/);
    assert.throws(() => splitSizes(1, 0.5), /too few/);
  });

  it("a rare label is spread over the splits in proportion", () => {
    // 10 of 100 rows positive for label 0: a 70/30 split gives 7 and 3.
    const labels = Array.from({ length: 100 }, (_, k) => [k % 10 === 0 ? 1 : 0, k % 2]);
    const assigned = iterativeStratification(labels, [70, 30], 9);
    const pos = [0, 0];
    labels.forEach((l, k) => {
      if (l[0] === 1) pos[assigned[k] as number] = (pos[assigned[k] as number] as number) + 1;
    });
    assert.deepEqual(pos, [7, 3]);
    assert.equal(assigned.filter((s) => s === 1).length, 30);
  });
});

describe("seeded random numbers", () => {
  it("same seed, same sequence; floats in [0, 1); ints in range", () => {
    const a = createRng(123);
    const b = createRng(123);
    const xs = Array.from({ length: 1000 }, () => a.next());
    assert.deepEqual(
      xs,
      Array.from({ length: 1000 }, () => b.next()),
    );
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
    const c = createRng(124);
    assert.notEqual(c.next(), xs[0]);
    const r = createRng(1);
    for (let k = 0; k < 200; k++) {
      const v = r.int(7);
      assert.ok(Number.isInteger(v) && v >= 0 && v < 7);
    }
    assert.throws(() => r.int(0), /positive integer/);
    assert.throws(() => createRng(Number.NaN), /finite/);
  });

  it("shuffle is a permutation; derived seeds differ per stream", () => {
    const arr = [...Array(50).keys()];
    const shuffled = createRng(3).shuffle([...arr]);
    assert.notDeepEqual(shuffled, arr);
    assert.deepEqual(
      [...shuffled].sort((x, y) => x - y),
      arr,
    );
    assert.notEqual(deriveSeed(42, 1), deriveSeed(42, 2));
    assert.notEqual(deriveSeed(42, 1), deriveSeed(43, 1));
    assert.equal(deriveSeed(42, 1), deriveSeed(42, 1));
    assert.notEqual(createRng(1).next(), createRng(2 ** 32 + 1).next());
  });
});
