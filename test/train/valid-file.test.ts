// `split --valid` writes valid.jsonl; `train --valid <file>` uses it as the validation split (the
// tfidf-lr baseline keeps these runs fast: the data handling is the same for a LoRA model).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fixture } from "../fixture.js";

const dir = mkdtempSync(join(tmpdir(), "toxlora-valid-file-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const parts = join(dir, "split");
const SCHEMA = ["--preset", "inspection-ai", "--labels", "差別,迷惑行為"];

function toxlora(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", resolve("src/cli/main.ts"), ...args], {
    encoding: "utf8",
    timeout: 120_000,
  });
}

const ids = (file: string) =>
  readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => String((JSON.parse(l) as { id: unknown }).id));

before(() => {
  const s = toxlora(
    "split",
    fixture("data/inspection-ai/subset.csv"),
    "--preset",
    "inspection-ai",
    "--test",
    "0.3",
    "--valid",
    "0.2",
    "--out-dir",
    parts,
  );
  assert.equal(s.status, 0, s.stderr);
});

test("train --eval test.jsonl --valid valid.jsonl: the three splits are the three files", () => {
  const out = join(dir, "run-both");
  const r = toxlora(
    "train",
    "--model",
    "tfidf-lr",
    "--data",
    join(parts, "train.jsonl"),
    "--eval",
    join(parts, "test.jsonl"),
    "--valid",
    join(parts, "valid.jsonl"),
    ...SCHEMA,
    "--out",
    out,
    "--quiet",
  );
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
  assert.deepEqual(
    m.files.map((f: { role: string }) => f.role),
    ["data", "eval", "valid"],
  );
  assert.deepEqual(m.splits.train, ids(join(parts, "train.jsonl")));
  assert.deepEqual(m.splits.valid, ids(join(parts, "valid.jsonl")));
  assert.deepEqual(m.splits.test, ids(join(parts, "test.jsonl")));
  assert.equal(JSON.parse(readFileSync(join(out, "thresholds.json"), "utf8")).tunedOn, "valid");
});

test("train --valid without --eval holds the test split out of --data", () => {
  const out = join(dir, "run-valid");
  const r = toxlora(
    "train",
    "--model",
    "tfidf-lr",
    "--data",
    join(parts, "train.jsonl"),
    "--valid",
    join(parts, "valid.jsonl"),
    "--test-ratio",
    "0.25",
    ...SCHEMA,
    "--out",
    out,
    "--quiet",
  );
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
  const data = ids(join(parts, "train.jsonl"));
  assert.deepEqual(m.splits.valid, ids(join(parts, "valid.jsonl")));
  assert.equal(m.splits.test.length, Math.ceil(0.25 * data.length));
  assert.deepEqual([...m.splits.train, ...m.splits.test].sort(), [...data].sort());
});

test("--valid with --valid-ratio is refused: they name the same split", () => {
  const r = toxlora(
    "train",
    "--model",
    "tfidf-lr",
    "--data",
    join(parts, "train.jsonl"),
    "--valid",
    join(parts, "valid.jsonl"),
    "--valid-ratio",
    "0.2",
    ...SCHEMA,
    "--out",
    join(dir, "run-refused"),
  );
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--valid <file> and --valid-ratio both name the validation split/);
});
