// `toxlora predict`: killed half-way, then resumed, gives exactly one row per input.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { train } from "../../src/train/trainer.js";
import { DEMO_DATA, demoTexts, tinyModel } from "../train/helpers.js";

const MAIN = resolve(process.cwd(), "src/cli/main.ts");
let dir: string;
let run: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-predict-"));
  const model = await tinyModel(join(dir, "model"), demoTexts(), "bert", { hidden: 16, layers: 1 });
  run = join(dir, "run");
  await train(
    { model, data: DEMO_DATA, epochs: 1, batchSize: 32, maxLength: 32, loraR: 2, loraAlpha: 4, out: run },
    { progress: "quiet" },
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

const lines = (file: string) => readFileSync(file, "utf8").split("\n").filter(Boolean);

test("predict killed half-way and re-run with --resume writes exactly one row per input", async () => {
  const n = 30_000;
  const texts = demoTexts();
  const input = join(dir, "in.jsonl");
  writeFileSync(
    input,
    Array.from(
      { length: n },
      (_, i) => `${JSON.stringify({ id: `t${i}`, text: texts[i % texts.length] })}\n`,
    ).join(""),
  );
  const out = join(dir, "out.jsonl");
  const partial = `${out}.partial`;

  const child = spawn(process.execPath, [
    "--import",
    "tsx",
    MAIN,
    "predict",
    "--run",
    run,
    "--input",
    input,
    "--out",
    out,
    "--quiet",
  ]);
  // Kill it hard once some rows are on disk.
  await new Promise<void>((done, fail) => {
    const timer = setInterval(() => {
      if (existsSync(partial) && lines(partial).length >= 512) {
        clearInterval(timer);
        child.kill("SIGKILL");
        done();
      }
    }, 5);
    child.on("exit", () => {
      clearInterval(timer);
      if (!existsSync(partial) || lines(partial).length >= n)
        fail(new Error("predict finished before it could be killed"));
      else done();
    });
  });
  await new Promise((r) => child.once("exit", r).once("close", r));
  const kept = lines(partial).length;
  assert.ok(kept > 0 && kept < n, `killed with ${kept} rows written`);
  assert.ok(!existsSync(out), "the final file only appears when complete");

  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", MAIN, "predict", "--run", run, "--input", input, "--out", out, "--resume"],
    {
      encoding: "utf8",
    },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /kept from before/);
  const rows = lines(out).map((l) => JSON.parse(l));
  assert.equal(rows.length, n);
  rows.forEach((row, i) => {
    assert.equal(row.index, i);
    assert.equal(row.id, `t${i}`);
  });
  assert.ok(!existsSync(partial));
});

test("tweets score from the CLI with a trained run: scored rows, summary.json and chart", () => {
  const texts = demoTexts();
  const input = join(dir, "tweets.jsonl");
  writeFileSync(
    input,
    texts
      .slice(0, 40)
      .map((text, i) =>
        JSON.stringify({
          id: String(1000 + i),
          text,
          created_at: "2026-11-01T00:00:00.000Z",
          author_id: "42",
        }),
      )
      .join("\n"),
  );
  const out = join(dir, "scored.jsonl");
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", MAIN, "tweets", "score", "--run", run, "--input", input, "--out", out],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  const rows = lines(out).map((l) => JSON.parse(l));
  assert.equal(rows.length, 40);
  assert.equal(rows[0].id, "1000");
  assert.equal(rows[0].author_id, "42");
  const summary = JSON.parse(readFileSync(join(dir, "summary.json"), "utf8"));
  assert.equal(summary.total, 40);
  assert.equal(summary.labels.length, 7);
  // The summary's counts are the rows' decisions.
  for (const label of summary.labels as string[]) {
    const flagged = rows.filter((row) => row.decisions[label] === true).length;
    assert.equal(summary.flagged[label], flagged, label);
  }
  assert.ok(existsSync(join(dir, "summary.png")));
});
