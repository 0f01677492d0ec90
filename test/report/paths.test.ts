// `toxlora report` writes report.html with the run's absolute local paths (run folder, model
// folder, data files) relative to the run, as serve's /report shows them; `--show-paths` keeps them.
// `report --compare` writes compare.html with every run's paths relative to the page's folder.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { buildComparison, buildReport } from "../../src/report/report.js";
import { relativizePaths } from "../../src/run/paths.js";
import { writeSyntheticRun } from "./synthetic-run.js";

let dir: string;
let run: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-report-paths-"));
  run = join(dir, "runs", "r1");
  await writeSyntheticRun(run, { rows: 30, epochs: 1, stepsPerEpoch: 2 });
  // A model folder beside the runs, as a real run records it.
  const config = JSON.parse(await readFile(join(run, "config.json"), "utf8"));
  config.modelDir = join(dir, "models", "bert");
  await writeFile(join(run, "config.json"), JSON.stringify(config, null, 2));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("report.html on disk holds no absolute local path; each is shown relative to the run", async () => {
  const html = await readFile(
    await buildReport(run, { fontFiles: [], explainErrors: 0, out: join(dir, "elsewhere", "report.html") }),
    "utf8",
  );
  assert.ok(!html.includes(dir), "no absolute path left");
  assert.ok(html.includes("../../models/bert"), "the model folder, relative to the run");
  assert.ok(html.includes("../r1-data.jsonl"), "the data file, relative to the run");
  assert.match(html, /<td>run directory<\/td><td>\.<\/td>/);
  // The charts written outside the report's folder are still linked (relatively).
  assert.match(html, /href="\.\.\/runs\/r1\/imgs\/loss\.svg"/);
});

test("report --show-paths keeps them absolute", async () => {
  const main = new URL("../../src/cli/main.ts", import.meta.url).pathname;
  const out = join(dir, "shown.html");
  await promisify(execFile)(
    process.execPath,
    ["--import", "tsx", main, "report", "--run", run, "--explain-errors", "0", "--show-paths", "--out", out],
    { encoding: "utf8" },
  );
  const html = await readFile(out, "utf8");
  assert.ok(html.includes(join(dir, "models", "bert")));
  assert.ok(html.includes(join(dir, "runs", "r1-data.jsonl")));
});

test("relativizePaths: one pass, so a folder outside the run is not replaced twice", () => {
  const runDir = "/data/runs/r1";
  const html = `model /models/bert, data &quot;/data/runs/r1-data.jsonl&quot;, run /data/runs/r1`;
  assert.equal(
    relativizePaths(html, runDir, [runDir, "/models/bert", "/data/runs/r1-data.jsonl"]),
    "model ../../../models/bert, data &quot;../r1-data.jsonl&quot;, run .",
  );
});

test("compare.html shows the runs' paths relative to the page's folder; --show-paths keeps them", async () => {
  const r2 = join(dir, "runs", "r2");
  await writeSyntheticRun(r2, { rows: 30, epochs: 1, stepsPerEpoch: 2, seed: 3 });
  const page = join(dir, "pages", "compare.html");
  const html = await readFile(await buildComparison([run, r2], page, { fontFiles: [] }), "utf8");
  assert.ok(!html.includes(dir), "no absolute path left");
  // The runs table names each run's folder, relative to pages/.
  assert.match(html, /<td>r1<\/td><td>\.\.\/runs\/r1<\/td>/);
  assert.match(html, /<td>r2<\/td><td>\.\.\/runs\/r2<\/td>/);
  // The paired section's warning names both runs' data files (different bytes), relative too.
  assert.match(html, /A \.\.\/runs\/r1-data\.jsonl \(\w+\), B \.\.\/runs\/r2-data\.jsonl/);

  const main = new URL("../../src/cli/main.ts", import.meta.url).pathname;
  const shown = join(dir, "pages", "shown.html");
  await promisify(execFile)(
    process.execPath,
    ["--import", "tsx", main, "report", "--compare", run, r2, "--show-paths", "--out", shown],
    { encoding: "utf8" },
  );
  const kept = await readFile(shown, "utf8");
  assert.ok(kept.includes(`<td>${join(dir, "runs", "r1")}</td>`));
  assert.ok(kept.includes(join(dir, "runs", "r2-data.jsonl")));
});
