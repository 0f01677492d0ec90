// The small rough edges a new user hits: where a run went (also with --quiet), Japanese labels
// aligned in `tweets score`'s summary, a hint when the label schema does not fit the file, a port in
// use said in words, --help examples in the shape runs really have, and predict keeping an existing
// --out unless told to overwrite it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { createServer } from "../../src/serve/server.js";
import { formatScoreSummary, type ScoreSummary } from "../../src/sources/score.js";
import { defaultRunDir } from "../../src/train/trainer.js";
import { fixture } from "../fixture.js";
import { KeywordClassifier } from "../serve/keyword-classifier.js";

const dir = mkdtempSync(join(tmpdir(), "toxlora-edges-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const data = join(dir, "data.jsonl");
const run = join(dir, "run");

function toxlora(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", resolve("src/cli/main.ts"), ...args], {
    encoding: "utf8",
    timeout: 120_000,
  });
}

before(() => {
  const lines = readFileSync(fixture("llmjp-v2-seed-stats.jsonl"), "utf8").split("\n").slice(0, 300);
  writeFileSync(data, `${lines.join("\n")}\n`);
});

test("train prints the run directory once, alone on stdout, also with --quiet", () => {
  const args = [
    "train",
    "--model",
    "tfidf-lr",
    "--data",
    data,
    "--labels",
    "obscene,corporate",
    "--bootstrap",
    "0",
  ];
  const quiet = toxlora(...args, "--out", run, "--quiet");
  assert.equal(quiet.status, 0, quiet.stderr);
  assert.equal(quiet.stdout, `${run}\n`);
  const loud = toxlora(...args, "--out", join(dir, "run-loud"));
  assert.equal(loud.status, 0, loud.stderr);
  assert.equal(loud.stdout, `${join(dir, "run-loud")}\n`);
  assert.ok(!loud.stderr.includes("run directory"), "the path is not repeated on stderr");
});

test("tweets score's summary aligns Japanese labels by display width", () => {
  const labels = ["猥褻", "obscene", "出会い・プライバシー侵害"];
  const per = (v: number) => Object.fromEntries(labels.map((l) => [l, v]));
  const summary: ScoreSummary = {
    input: "in",
    output: "out",
    total: 10,
    labels,
    thresholds: per(0.5),
    flagged: per(3),
    rate: per(0.3),
    anyFlagged: 3,
    top: Object.fromEntries(labels.map((l) => [l, []])),
  };
  const rows = formatScoreSummary(summary).split("\n").slice(1, 4);
  // Where "flagged" starts, in display columns (a kanji or kana is two).
  const column = (line: string) => {
    const before = line.slice(0, line.indexOf(" flagged"));
    return [...before].reduce((w, ch) => w + (/[\u3000-\u9fff\u30fb]/.test(ch) ? 2 : 1), 0);
  };
  assert.equal(new Set(rows.map(column)).size, 1, rows.join("\n"));
});

test("a file that has none of the schema's label fields names --preset and --labels", () => {
  const r = toxlora("analyze", fixture("data/inspection-ai/subset.csv"));
  assert.notEqual(r.status, 0);
  assert.match(
    r.stderr,
    /no row has any label field of the llmjp-toxicity schema \(obscene, .*\); the file's fields are id, text, Not Toxic/,
  );
  assert.match(r.stderr, /--preset \(llmjp-toxicity, inspection-ai\) or name the label fields with --labels/);
});

test("serve on a port in use says which port and suggests --port", async () => {
  const taken = createNetServer();
  await new Promise<void>((done) => taken.listen(0, "127.0.0.1", done));
  const port = (taken.address() as { port: number }).port;
  try {
    await assert.rejects(
      createServer(new KeywordClassifier(), { port, host: "127.0.0.1" }),
      new RegExp(
        `^Error: port ${port} is already in use on 127\\.0\\.0\\.1 \\(another server\\?\\); choose another with --port <n>$`,
      ),
    );
  } finally {
    taken.close();
  }
});

test("--help examples name run folders the way runs are named; train --data lists .json", () => {
  const shape = defaultRunDir("bert", new Date(2026, 0, 1, 12, 0, 0));
  assert.equal(shape, join("outputs", "bert", "2026-01-01", "12-00-00"));
  for (const command of ["train", "eval", "predict", "serve", "report", "export", "explain", "cv"]) {
    const help = toxlora(command, "--help").stdout;
    for (const m of help.matchAll(/outputs\/[^\s/]+\/\d[^\s]*/g))
      assert.match(
        m[0],
        /^outputs\/[^/]+\/\d{4}-\d{2}-\d{2}\/\d{2}-\d{2}-\d{2}\/?$/,
        `${command} --help: ${m[0]}`,
      );
  }
  assert.match(
    toxlora("train", "--help").stdout,
    /--data <file> +training data \(\.jsonl, \.json, \.csv, \.tsv\)/,
  );
});

test("predict refuses to overwrite an existing --out without --force (or --resume)", () => {
  const out = join(dir, "scored.jsonl");
  writeFileSync(out, "precious\n");
  const r = toxlora("predict", "--run", run, "--input", data, "--out", out, "--quiet");
  assert.notEqual(r.status, 0);
  assert.match(
    r.stderr,
    /scored\.jsonl already exists: pass --force to overwrite it \(or --resume to continue it\)/,
  );
  assert.equal(readFileSync(out, "utf8"), "precious\n");
  const forced = toxlora("predict", "--run", run, "--input", data, "--out", out, "--quiet", "--force");
  assert.equal(forced.status, 0, forced.stderr);
  assert.equal(readFileSync(out, "utf8").trim().split("\n").length, 300);
});
