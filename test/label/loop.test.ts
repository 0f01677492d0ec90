// The whole active-learning loop through the CLI: a trained run → `label serve --run` on a pool of
// unlabelled posts (scored once, most uncertain first) → scripted annotators over HTTP → `label
// export` → `train --data` on the export → a second `label serve --run` with the new run.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { TRAINED_LABELS, trainTinyRun } from "../report/trained-run.js";
import { DEMO_DATA } from "../train/helpers.js";
import { getJson, postJson, startLabelServe } from "./cli-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "toxlora-label-loop-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", resolve("src/cli/main.ts"), ...args], {
    encoding: "utf8",
    timeout: 240_000,
  });
  assert.equal(r.status, 0, `toxlora ${args.join(" ")}:\n${r.stderr}`);
  return r;
}

/** Uncertain picks must come in order of margin (the plan is the serving order). */
function checkPlan(db: string): { firstUncertain: string; margins: number[] } {
  const d = new Database(db, { readonly: true });
  try {
    const key = (d.prepare("SELECT value FROM meta WHERE key = 'plan'").pluck().get() as string) ?? "";
    const run = (JSON.parse(key) as { run: string }).run;
    const rows = d
      .prepare(
        `SELECT pl.pick, p.ext_id, s.margin FROM plan pl JOIN posts p ON p.id = pl.post
         JOIN scores s ON s.post = pl.post AND s.run = ? ORDER BY pl.rank`,
      )
      .all(run) as { pick: string; ext_id: string; margin: number }[];
    const margins = rows.filter((r) => r.pick === "uncertain").map((r) => r.margin);
    return { firstUncertain: rows.find((r) => r.pick === "uncertain")?.ext_id as string, margins };
  } finally {
    d.close();
  }
}

test("active-learning loop: run → label serve --run → annotators → export → train --data → label serve --run (new run)", async () => {
  const run1 = await trainTinyRun(dir);
  const truth = readFileSync(DEMO_DATA, "utf8")
    .split("\n")
    .filter(Boolean)
    .slice(0, 60)
    .map((l) => JSON.parse(l) as Record<string, string>);
  const pool = join(dir, "pool.jsonl");
  writeFileSync(pool, truth.map((r) => JSON.stringify({ id: r.id, text: r.text })).join("\n"));
  const byId = new Map(truth.map((r) => [r.id as string, r]));

  const db = join(dir, "labels.sqlite");
  const serve1 = await startLabelServe([
    "--db",
    db,
    "--pool",
    pool,
    "--run",
    run1,
    "--overlap",
    "2",
    "--random",
    "0.25",
  ]);
  try {
    assert.match(serve1.stderr(), /60 posts scored now, 0 scored before/);
    const plan = checkPlan(db);
    assert.ok(plan.margins.length > 30, "most picks are uncertainty picks");
    assert.deepEqual(
      plan.margins,
      [...plan.margins].sort((a, b) => a - b),
      "most uncertain first",
    );
    // Two annotators label everything; bob disagrees on every fifth post's first category.
    let k = 0;
    for (const who of ["ann", "bob"]) {
      for (;;) {
        const { status, body } = await getJson(`${serve1.url}/api/next?annotator=${who}`);
        if (status === 204) break;
        const post = body as { id: string; labels: string[]; suggested: Record<string, number> };
        assert.deepEqual(Object.keys(post.suggested), TRAINED_LABELS);
        const row = byId.get(post.id) as Record<string, string>;
        const labels = Object.fromEntries(post.labels.map((l) => [l, row[l] === "yes"]));
        if (who === "bob" && k++ % 5 === 0) labels.obscene = !labels.obscene;
        const r = await postJson(`${serve1.url}/api/answer`, {
          id: post.id,
          annotator: who,
          labels,
          overall: row.label,
        });
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
    }
  } finally {
    await serve1.stop();
  }

  const exported = join(dir, "labelled.jsonl");
  const ex = cli(["label", "export", "--db", db, "--out", exported]);
  assert.match(ex.stderr, /60 posts to/);
  assert.match(
    ex.stderr,
    /toxlora train --data .* --preset llmjp-toxicity --labels obscene,discriminatory,corporate/,
  );
  const rows = readFileSync(exported, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(rows.length, 60);
  for (const r of rows) {
    const t = byId.get(r.id as string) as Record<string, string>;
    assert.equal(r.annotators, 2);
    assert.equal(r.discriminatory, t.discriminatory, "both agree: the truth");
    assert.equal(r.label, t.label);
    // obscene: bob's flips tie 1–1, and a tie counts as positive.
    const votes = r.votes as Record<string, number>;
    assert.equal(r.obscene, votes.obscene >= 1 ? "yes" : "no");
  }
  const stats = JSON.parse(cli(["label", "stats", "--db", db, "--json"]).stdout) as {
    categories: { label: string; alpha: number | null; alphaPosts: number }[];
  };
  const alphas = Object.fromEntries(stats.categories.map((c) => [c.label, c.alpha]));
  assert.ok((alphas.obscene as number) < 1, "bob's flips lower obscene's alpha");
  assert.equal(alphas.discriminatory, 1);
  assert.equal(stats.categories[0]?.alphaPosts, 60);

  const run2 = join(dir, "run2");
  cli([
    "train",
    "--data",
    exported,
    "--preset",
    "llmjp-toxicity",
    "--labels",
    TRAINED_LABELS.join(","),
    "--model",
    join(dir, "model"),
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--max-length",
    "32",
    "--lora-r",
    "2",
    "--lora-alpha",
    "4",
    "--lr",
    "5e-3",
    "--out",
    run2,
    "--quiet",
  ]);
  assert.ok(existsSync(join(run2, "adapter", "adapter_model.safetensors")));

  // The new run re-orders the same database; a third annotator gets its most uncertain post first.
  const serve2 = await startLabelServe(["--db", db, "--run", run2, "--overlap", "3", "--random", "0"]);
  try {
    assert.match(serve2.stderr(), /60 posts scored now/);
    const plan = checkPlan(db);
    assert.equal(plan.margins.length, 60);
    const { body } = await getJson(`${serve2.url}/api/next?annotator=cyd`);
    assert.equal(body?.id, plan.firstUncertain);
    assert.deepEqual(Object.keys(body?.suggested as object), TRAINED_LABELS);
  } finally {
    await serve2.stop();
  }
});
