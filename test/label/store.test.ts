// The label database: pool import, serving order, overlap under concurrent annotators, answers,
// export by majority vote, and migrations.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { llmjpToxicitySchema, selectLabels } from "../../src/data/schema.js";
import { MIGRATIONS, openDb } from "../../src/label/db.js";
import { exportRows, overallVote } from "../../src/label/export.js";
import { nearDuplicate, planOrder, uncertaintyMargin } from "../../src/label/plan.js";
import { labelStats } from "../../src/label/stats.js";
import { LabelStore } from "../../src/label/store.js";

const dir = mkdtempSync(join(tmpdir(), "toxlora-label-store-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const SCHEMA = selectLabels(llmjpToxicitySchema(), ["obscene", "violent"]);

function pool(texts: string[]): string {
  const file = join(dir, `pool-${n++}.jsonl`);
  writeFileSync(file, texts.map((t, i) => JSON.stringify({ id: `p${i}`, text: t })).join("\n"));
  return file;
}

async function store(texts: string[], overlap: number): Promise<LabelStore> {
  const s = LabelStore.open(join(dir, `db-${n++}.sqlite`), SCHEMA, { overlap });
  await s.importPool(pool(texts));
  s.setPlan(
    planOrder(
      texts.map((_, i) => ({ post: i + 1 })),
      { random: 1, seed: 1 },
    ),
    "test",
  );
  return s;
}

const NO = { obscene: false, violent: false };
const YES = { obscene: true, violent: false };

test("import is idempotent; an id that comes back with another text is refused with file and line", async () => {
  const s = LabelStore.open(join(dir, "import.sqlite"), SCHEMA);
  const file = pool(["a", "b", "c"]);
  assert.deepEqual(await s.importPool(file), { added: 3, existing: 0 });
  assert.deepEqual(await s.importPool(file), { added: 0, existing: 3 });
  const changed = join(dir, "changed.jsonl");
  writeFileSync(
    changed,
    `${JSON.stringify({ id: "p0", text: "a" })}\n${JSON.stringify({ id: "p1", text: "B!" })}\n`,
  );
  await assert.rejects(s.importPool(changed), /changed\.jsonl:2: id "p1" is already in .* with another text/);
  assert.equal(s.postCount(), 3);
  s.close();
});

test("a database keeps its schema: other labels are refused; a newer schema version is refused", () => {
  const file = join(dir, "schema.sqlite");
  LabelStore.open(file, SCHEMA).close();
  assert.throws(() => LabelStore.open(file, llmjpToxicitySchema()), /collects labels obscene, violent/);
  LabelStore.open(file, undefined).close(); // no schema given: the database's
  const db = new Database(file);
  assert.equal(db.pragma("user_version", { simple: true }), MIGRATIONS.length);
  assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
  db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
  db.close();
  assert.throws(() => openDb(file), /newer than this toxlora knows/);
});

test("overlap 1: two annotators taking turns never get the same post, and all posts get served", async () => {
  const s = await store(
    Array.from({ length: 10 }, (_, i) => `post number ${i} ${"xyz".repeat(i)}`),
    1,
  );
  const seen = new Map<string, string>();
  for (let round = 0; round < 10; round++) {
    for (const who of ["ann", "bob"]) {
      const p = s.next(who);
      if (!p) continue;
      assert.equal(seen.get(p.id), undefined, `${p.id} served to ${seen.get(p.id)} and ${who}`);
      seen.set(p.id, who);
    }
    // Both hold a post at once before either answers: the leases keep them apart.
    for (const who of ["ann", "bob"]) {
      const held = s.next(who); // the same post again (a reload)
      if (held) s.answer({ id: held.id, annotator: who, labels: NO });
    }
  }
  assert.equal(seen.size, 10);
  assert.equal(s.next("ann"), undefined);
  assert.equal(s.next("cyd"), undefined, "overlap 1: a third annotator gets nothing either");
  s.close();
});

test("overlap 2: each post gets at most two answers, never two from one annotator; expired leases free a post", async () => {
  const s = await store(["a1 b2", "c3 d4", "e5 f6"], 2);
  const t = 1_000_000;
  const ann = s.next("ann", t);
  const bob = s.next("bob", t);
  const cyd = s.next("cyd", t);
  assert.ok(ann && bob && cyd);
  assert.equal(ann.id, bob.id, "two copies of the first post");
  assert.notEqual(cyd.id, ann.id, "no third copy while two are out");
  s.answer({ id: ann.id, annotator: "ann", labels: YES }, t + 1);
  assert.throws(() => s.answer({ id: ann.id, annotator: "cyd", labels: YES }, t + 2), /not served/);
  // ann answers again: a change of her answer, not a second vote.
  assert.deepEqual(s.answer({ id: ann.id, annotator: "ann", labels: NO }, t + 3), { changed: true });
  // bob's lease expires; dan gets the copy, and bob answering late finds the post full.
  const later = t + s.leaseMs + 1;
  const dan = s.next("dan", later);
  assert.equal(dan?.id, ann.id);
  s.answer({ id: ann.id, annotator: "dan", labels: YES }, later);
  assert.throws(() => s.answer({ id: ann.id, annotator: "bob", labels: YES }, later), /already has 2 answer/);
  const row = s.db.prepare("SELECT answers FROM posts WHERE ext_id = ?").get(ann.id) as { answers: number };
  assert.equal(row.answers, 2);
  const counted = s.db.prepare("SELECT count(*) AS n FROM answers WHERE skipped = 0 GROUP BY post").all() as {
    n: number;
  }[];
  assert.ok(counted.every((c) => c.n <= 2));
  s.close();
});

test("skipping frees the copy for others and is not served to the skipper again", async () => {
  const s = await store(["one post", "another post"], 1);
  const p = s.next("ann");
  assert.ok(p);
  s.answer({ id: p.id, annotator: "ann", skip: true });
  assert.notEqual(s.next("ann")?.id, p.id);
  assert.equal(s.next("bob")?.id, p.id);
  s.close();
});

test("answers are checked: unknown labels, missing labels, unknown overall, unknown post", async () => {
  const s = await store(["x y z"], 1);
  const p = s.next("ann");
  assert.ok(p);
  assert.throws(
    () => s.answer({ id: p.id, annotator: "ann", labels: { ...NO, rude: true } }),
    /unknown label "rude"/,
  );
  assert.throws(() => s.answer({ id: p.id, annotator: "ann", labels: { obscene: true } }), /labels.violent/);
  assert.throws(
    () => s.answer({ id: p.id, annotator: "ann", labels: NO, overall: "meh" }),
    /toxic, nontoxic/,
  );
  assert.throws(() => s.answer({ id: "nope", annotator: "ann", labels: NO }), /no post with id "nope"/);
  s.close();
});

test("plan: most uncertain first with a random share; near-duplicates are not served back to back", async () => {
  const margins = [0.4, 0.01, 0.3, 0.2, 0.05, 0.1];
  const all = planOrder(
    margins.map((margin, i) => ({ post: i, margin })),
    { random: 0, seed: 3 },
  );
  assert.deepEqual(
    all.map((p) => p.post),
    [1, 4, 5, 3, 2, 0],
  );
  assert.ok(all.every((p) => p.pick === "uncertain"));
  const many = Array.from({ length: 2000 }, (_, i) => ({ post: i, margin: i / 2000 }));
  const mixed = planOrder(many, { random: 0.2, seed: 3 });
  assert.equal(new Set(mixed.map((p) => p.post)).size, 2000, "every post once");
  const randomShare = mixed.filter((p) => p.pick === "random").length / 2000;
  assert.ok(randomShare > 0.15 && randomShare < 0.25, `random share ${randomShare}`);
  assert.deepEqual(planOrder(many, { random: 0.2, seed: 3 }), mixed, "same seed, same order");
  assert.equal(uncertaintyMargin([0.9, 0.45], [0.5, 0.5]), 0.04999999999999999);

  assert.ok(nearDuplicate("このアニメ最高！ https://t.co/abc", "このアニメ最高!!  https://t.co/xyz"));
  assert.ok(!nearDuplicate("このアニメ最高！", "あの会社の製品は全部ゴミ"));
  const s = LabelStore.open(join(dir, "dups.sqlite"), SCHEMA);
  await s.importPool(
    pool(["今期のアニメは作画が最高", "今期のアニメは作画が最高!!", "来週の天気は雨らしい"]),
  );
  s.setPlan(
    planOrder(
      [1, 2, 3].map((post, k) => ({ post, margin: k })),
      { random: 0, seed: 1 },
    ),
    "dups",
  );
  const first = s.next("ann");
  s.answer({ id: first?.id as string, annotator: "ann", labels: NO });
  assert.equal(s.next("ann")?.text, "来週の天気は雨らしい", "the near-duplicate waits");
  s.close();
});

test("export: majority vote per category, ties by the rule, vote counts kept; overall vote and its tie", async () => {
  const s = await store(["p zero", "p one", "p two"], 3);
  const vote = (who: string, labels: typeof NO, overall?: string) => {
    const p = s.next(who);
    assert.ok(p);
    s.answer({ id: p.id, annotator: who, labels, overall });
    return p.id;
  };
  // Every annotator answers all three posts, in the same plan order.
  const ids = [vote("a", YES, "toxic"), vote("a", NO), vote("a", YES)];
  vote("b", YES, "nontoxic");
  vote("b", NO);
  vote("b", NO);
  vote("c", NO, "toxic");
  const byId = (rows: Record<string, unknown>[]) => new Map(rows.map((r) => [r.id as string, r]));
  let rows = byId(exportRows(s).rows);
  assert.deepEqual(rows.get(ids[0]), {
    id: ids[0],
    text: s.db.prepare("SELECT text FROM posts WHERE ext_id = ?").pluck().get(ids[0]),
    obscene: "yes",
    violent: "no",
    label: "toxic",
    votes: { obscene: 2, violent: 0 },
    annotators: 3,
    sampled: "random",
  });
  assert.equal(rows.get(ids[1])?.label, "nontoxic", "no overall given: from the categories");
  assert.equal(rows.get(ids[2])?.obscene, "yes", "1–1 tie counts as positive by default");
  assert.deepEqual(rows.get(ids[2])?.tie_labels, ["obscene"]);
  rows = byId(exportRows(s, { ties: "negative" }).rows);
  assert.equal(rows.get(ids[2])?.obscene, "no");
  assert.equal(exportRows(s, { minVotes: 3 }).rows.length, 1);
  assert.equal(
    overallVote(["toxic", "nontoxic"], ["toxic", "nontoxic", "has_toxic_expression"]),
    "has_toxic_expression",
  );

  const stats = labelStats(s);
  assert.deepEqual(
    stats.annotators.map((a) => [a.annotator, a.answers]),
    [
      ["a", 3],
      ["b", 3],
      ["c", 1],
    ],
  );
  assert.equal(stats.categories[0]?.rate, 3 / 7);
  s.close();
});
