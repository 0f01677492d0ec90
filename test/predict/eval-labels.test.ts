// `eval` evaluates the run's labels on any file that has them: the original file of a run trained on
// a keep-labels subset, or a file in another schema described with --preset/--labels/... flags.
// (The tfidf-lr baseline keeps the runs fast; eval reads every run the same way.)
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fixture } from "../fixture.js";

const dir = mkdtempSync(join(tmpdir(), "toxlora-eval-labels-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const original = join(dir, "original.jsonl");
const run = join(dir, "run");

function toxlora(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", resolve("src/cli/main.ts"), ...args], {
    encoding: "utf8",
    timeout: 120_000,
  });
}

function ok(...args: string[]) {
  const r = toxlora(...args);
  assert.equal(r.status, 0, `toxlora ${args.join(" ")}:\n${r.stderr}`);
  return r;
}

const rows = () =>
  readFileSync(original, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, string>);

before(() => {
  // 600 rows of the LLM-jp-shaped fixture (all 7 labels); the run keeps two of them.
  const lines = readFileSync(fixture("llmjp-v2-seed-stats.jsonl"), "utf8").split("\n").slice(0, 600);
  writeFileSync(original, `${lines.join("\n")}\n`);
  const balanced = join(dir, "balanced.jsonl");
  ok("balance", original, "--strategy", "keep-labels:obscene,discriminatory", "--out", balanced);
  ok("train", "--model", "tfidf-lr", "--data", balanced, "--out", run, "--quiet", "--bootstrap", "0");
});

test("eval --data <the original file>: the run's two labels, the others left out with a note", () => {
  const out = join(dir, "eval-original");
  const r = ok("eval", "--run", run, "--data", original, "--out", out, "--bootstrap", "0");
  assert.match(
    r.stderr,
    /note: evaluating the run's labels \(obscene, discriminatory\); the file's violent, .* are left out/,
  );
  const ev = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
  assert.deepEqual(ev.tuned.labels, ["obscene", "discriminatory"]);
  assert.equal(ev.rows, 600);
  // The model has learned both labels: eval.json's check of degenerate labels is there and empty.
  assert.deepEqual(ev.degenerate, {});
  assert.doesNotMatch(r.stderr, /warning: label/);
  const truth = rows().map((x) => x.obscene === "yes");
  const written = readFileSync(join(out, "predictions.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).truth.obscene === 1);
  assert.deepEqual(written, truth);
});

test("eval accepts the schema flags: a file in another schema", () => {
  const tagged = join(dir, "tagged.jsonl");
  const yes = (x: Record<string, string>) => ["obscene", "discriminatory"].filter((l) => x[l] === "yes");
  writeFileSync(
    tagged,
    rows()
      .map((x) => `${JSON.stringify({ body: x.text, tags: yes(x) })}\n`)
      .join(""),
  );
  const out = join(dir, "eval-tagged");
  const args = ["--text-field", "body", "--labels-field", "tags", "--labels", "obscene,discriminatory"];
  ok("eval", "--run", run, "--data", tagged, ...args, "--out", out, "--bootstrap", "0");
  const a = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
  const b = JSON.parse(readFileSync(join(dir, "eval-original", "eval.json"), "utf8"));
  assert.deepEqual(a.tuned.perLabel, b.tuned.perLabel, "the same texts and truth give the same metrics");
});

test("a file without one of the run's labels is refused, naming it and the schema flags", () => {
  const r = toxlora(
    "eval",
    "--run",
    run,
    "--data",
    original,
    "--labels",
    "obscene,violent",
    "--out",
    join(dir, "x"),
  );
  assert.notEqual(r.status, 0);
  assert.match(
    r.stderr,
    /no label discriminatory \(the file has obscene, violent; the run predicts obscene, discriminatory\); read it with the right --preset or --labels/,
  );
});
