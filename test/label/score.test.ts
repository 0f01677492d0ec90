// Scoring the pool is done once per run and resumes where it stopped: each block of posts is
// committed with its scores, a stopped scoring continues after the last committed block, and a
// second start with the same run scores nothing.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { llmjpToxicitySchema } from "../../src/data/schema.js";
import { uncertaintyMargin } from "../../src/label/plan.js";
import { planCandidates, scorePool } from "../../src/label/score.js";
import { LabelStore } from "../../src/label/store.js";
import { KeywordClassifier } from "../serve/keyword-classifier.js";

const dir = mkdtempSync(join(tmpdir(), "toxlora-label-score-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("scorePool: stopped after a block, resumed, then nothing left; margins from the run's thresholds", async () => {
  const pool = join(dir, "pool.txt");
  const texts = Array.from({ length: 600 }, (_, i) => (i % 3 === 0 ? `会社の話 ${i}` : `ふつうの投稿 ${i}`));
  writeFileSync(pool, `${texts.join("\n")}\n`);
  const store = LabelStore.open(join(dir, "s.sqlite"), llmjpToxicitySchema());
  await store.importPool(pool);
  const clf = new KeywordClassifier();
  const stop = new AbortController();
  const first = await scorePool(store, clf, "run-a", { signal: stop.signal, onProgress: () => stop.abort() });
  assert.deepEqual(first, { scored: 256, kept: 0 });
  const second = await scorePool(store, clf, "run-a");
  assert.deepEqual(second, { scored: 344, kept: 256 });
  assert.equal(clf.calls.flat().length, 600, "no post scored twice");
  assert.deepEqual(await scorePool(store, clf, "run-a"), { scored: 0, kept: 600 });

  const candidates = planCandidates(store, "run-a");
  const [probs] = await clf.predict([texts[0] as string]);
  assert.equal(candidates[0]?.margin, uncertaintyMargin(probs?.probs ?? [], clf.thresholds));
  assert.ok(candidates.every((c) => c.margin !== undefined));
  assert.ok(
    planCandidates(store, "run-b").every((c) => c.margin === undefined),
    "another run has no scores yet",
  );
  store.close();
});
