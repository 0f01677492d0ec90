// predict --out - writes to stdout; progress uses "\r" only on a terminal; every command that runs a
// model refuses a --device other than cpu/cuda and has --threads. (A tfidf-lr run keeps it fast.)
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fixture } from "../fixture.js";

const MAIN = resolve("src/cli/main.ts");
// Resolved here: the commands run in a temporary folder, where a bare "tsx" would not resolve.
const TSX = import.meta.resolve("tsx");
const dir = mkdtempSync(join(tmpdir(), "toxlora-cli-out-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const data = join(dir, "data.jsonl");
const run = join(dir, "run");

function toxlora(args: string[], cwd = dir) {
  return spawnSync(process.execPath, ["--import", TSX, MAIN, ...args], {
    cwd,
    encoding: "utf8",
    timeout: 120_000,
  });
}

before(() => {
  const lines = readFileSync(fixture("llmjp-v2-seed-stats.jsonl"), "utf8").split("\n").slice(0, 600);
  writeFileSync(data, `${lines.join("\n")}\n`);
  const r = toxlora(
    ["train", "--model", "tfidf-lr", "--data", data, "--labels", "obscene,discriminatory"].concat([
      "--out",
      run,
      "--quiet",
      "--bootstrap",
      "0",
    ]),
  );
  assert.equal(r.status, 0, r.stderr);
});

test("predict --out - writes the rows to stdout and no file named -", () => {
  const r = toxlora(["predict", "--run", run, "--input", data, "--out", "-"]);
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(rows.length, 600);
  assert.deepEqual(Object.keys(rows[0].decisions), ["obscene", "discriminatory"]);
  assert.ok(!existsSync(join(dir, "-")), "a file named - was created");
  assert.ok(!existsSync(join(dir, "-.partial")));
  // Without a terminal, each progress update is its own line: no "\r" runs them together.
  assert.ok(!r.stderr.includes("\r"), JSON.stringify(r.stderr));
  assert.match(r.stderr, /^scored 256 texts \(.*\)\nscored 512 texts/m);
  assert.match(r.stderr, /done: 600 rows to stdout/);
  // stdout cannot be resumed.
  const resumed = toxlora(["predict", "--run", run, "--input", data, "--out", "-", "--resume"]);
  assert.notEqual(resumed.status, 0);
  assert.match(resumed.stderr, /stdout \(--out -\) cannot be resumed/);
});

test("--device other than cpu/cuda is refused by every command that runs a model; all have --threads", () => {
  for (const args of [
    ["predict", "--run", run, "--input", data, "--out", join(dir, "p.jsonl")],
    ["eval", "--run", run, "--data", data],
  ]) {
    const r = toxlora([...args, "--device", "gpu"]);
    assert.notEqual(r.status, 0, `${args[0]} --device gpu ran`);
    assert.match(
      r.stderr,
      /option '--device <d>' argument 'gpu' is invalid\. Allowed choices are cpu, cuda/,
      args[0],
    );
  }
  for (const command of [
    ["train"],
    ["eval"],
    ["predict"],
    ["serve"],
    ["explain"],
    ["tweets", "score"],
    ["demo"],
  ]) {
    const help = toxlora([...command, "--help"]).stdout;
    assert.match(
      help,
      /--device <d> +execution device \(choices: "cpu", "cuda",\s+default:\s+"cpu"\)/,
      command.join(" "),
    );
    assert.match(help, /--threads <n>/, command.join(" "));
  }
});
