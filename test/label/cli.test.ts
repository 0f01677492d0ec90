// `toxlora label serve` as a process: kill -9 loses no saved answer, and two servers on one database
// with annotators working in parallel keep to --overlap (the assignment is a SQLite transaction).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { getJson, postJson, startLabelServe } from "./cli-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "toxlora-label-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const LABELS = ["--preset", "llmjp-toxicity", "--labels", "obscene,violent"];
const ANSWER = { obscene: false, violent: true };

function writePool(name: string, count: number): string {
  const file = join(dir, name);
  const rows = Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      id: `t${i}`,
      text: `投稿 ${i}: ${"あいうえおかきくけこ".slice(0, 1 + (i % 10))}${i * 7919}`,
    }),
  );
  writeFileSync(file, `${rows.join("\n")}\n`);
  return file;
}

function answersIn(db: string): { id: string; annotator: string }[] {
  const d = new Database(db, { readonly: true });
  try {
    return d
      .prepare(
        "SELECT p.ext_id AS id, a.annotator FROM answers a JOIN posts p ON p.id = a.post WHERE a.skipped = 0",
      )
      .all() as { id: string; annotator: string }[];
  } finally {
    d.close();
  }
}

test("kill -9 after N answers, restart: exactly N answers kept, the next post is one the annotator has not answered", async () => {
  const db = join(dir, "crash.sqlite");
  const pool = writePool("crash.jsonl", 20);
  const first = await startLabelServe(["--db", db, "--pool", pool, ...LABELS]);
  const N = 7;
  const answered: string[] = [];
  try {
    for (let i = 0; i < N; i++) {
      const { body } = await getJson(`${first.url}/api/next?annotator=ann`);
      const id = body?.id as string;
      const r = await postJson(`${first.url}/api/answer`, { id, annotator: "ann", labels: ANSWER });
      assert.equal(r.status, 200);
      answered.push(id);
    }
    await getJson(`${first.url}/api/next?annotator=ann`); // served, not answered, when the kill comes
  } finally {
    first.child.kill("SIGKILL");
    await first.stop();
  }
  assert.equal(first.child.signalCode, "SIGKILL");
  const kept = answersIn(db);
  assert.equal(kept.length, N);
  assert.deepEqual(kept.map((a) => a.id).sort(), [...answered].sort());

  const second = await startLabelServe(["--db", db]); // no --pool: the database has it
  try {
    const { body } = await getJson(`${second.url}/api/next?annotator=ann`);
    assert.ok(body && !answered.includes(body.id as string), `served ${body?.id} again`);
    const stats = await getJson(`${second.url}/api/stats`);
    assert.equal(stats.body?.answers, N);
  } finally {
    await second.stop();
  }
});

for (const overlap of [1, 2]) {
  test(`two servers on one database, annotators in parallel, --overlap ${overlap}: at most ${overlap} answer(s) per post`, async () => {
    const db = join(dir, `parallel-${overlap}.sqlite`);
    const pool = writePool(`parallel-${overlap}.jsonl`, 12);
    const a = await startLabelServe(["--db", db, "--pool", pool, "--overlap", String(overlap), ...LABELS]);
    const b = await startLabelServe(["--db", db, "--overlap", String(overlap)]);
    try {
      // Four annotators, two on each server, each answering as fast as it can until nothing is left.
      const work = async (url: string, who: string) => {
        const got: string[] = [];
        for (;;) {
          const { status, body } = await getJson(`${url}/api/next?annotator=${who}`);
          if (status === 204) return got;
          const r = await postJson(`${url}/api/answer`, { id: body?.id, annotator: who, labels: ANSWER });
          assert.equal(r.status, 200, JSON.stringify(r.body));
          got.push(body?.id as string);
        }
      };
      const runs = await Promise.all([
        work(a.url, "ann"),
        work(b.url, "bob"),
        work(a.url, "cyd"),
        work(b.url, "dan"),
      ]);
      const perPost = new Map<string, number>();
      for (const { id } of answersIn(db)) perPost.set(id, (perPost.get(id) ?? 0) + 1);
      assert.equal(perPost.size, 12, "every post answered");
      assert.ok(
        [...perPost.values()].every((n) => n === overlap),
        JSON.stringify([...perPost]),
      );
      for (const got of runs) assert.equal(new Set(got).size, got.length, "nobody answers a post twice");
      if (overlap === 1) {
        const all = runs.flat();
        assert.equal(new Set(all).size, all.length, "no post went to two annotators");
      }
    } finally {
      await a.stop();
      await b.stop();
    }
  });
}
