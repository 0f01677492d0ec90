// Scoring the pool with a run, once: probabilities go into the database block by block (each block
// one transaction), so a stopped or killed server resumes where it was, and a restart with the same
// run scores nothing again. The calls are cut like `predict`'s (scoreAligned), so the numbers match.
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { PREDICT_BLOCK, scoreAligned } from "../predict/predict.js";
import type { Classifier } from "../run/types.js";
import { setMeta } from "./db.js";
import { type PlanCandidate, uncertaintyMargin } from "./plan.js";
import type { LabelStore } from "./store.js";

/** A short key for a classifier: a hash of its identity (run, adapter weights, max length). */
export async function runKey(clf: Classifier, runDir: string): Promise<string> {
  const identity = (await clf.identity?.()) ?? { run: resolve(runDir) };
  const text = JSON.stringify({ identity, labels: clf.labels, thresholds: clf.thresholds });
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/**
 * Scores the posts of `store` that `key`'s classifier has not scored yet. Returns how many were
 * scored now and how many were already there.
 */
export async function scorePool(
  store: LabelStore,
  clf: Classifier,
  key: string,
  opts: { onProgress?: (done: number, total: number) => void; signal?: AbortSignal } = {},
): Promise<{ scored: number; kept: number }> {
  const { db } = store;
  setMeta(db, `run-labels:${key}`, JSON.stringify(clf.labels));
  const todo = db
    .prepare(
      "SELECT id, text FROM posts WHERE NOT EXISTS (SELECT 1 FROM scores WHERE run = ? AND post = posts.id) ORDER BY id",
    )
    .all(key) as { id: number; text: string }[];
  const total = store.postCount();
  const kept = total - todo.length;
  const insert = db.prepare("INSERT OR REPLACE INTO scores (run, post, probs, margin) VALUES (?, ?, ?, ?)");
  let scored = 0;
  for (let i = 0; i < todo.length; i += PREDICT_BLOCK) {
    if (opts.signal?.aborted) break;
    const block = todo.slice(i, i + PREDICT_BLOCK);
    const results = await scoreAligned(
      clf,
      i,
      block.map((p) => p.text),
    );
    db.transaction(() => {
      block.forEach((p, k) => {
        const probs = results[k]?.probs ?? [];
        insert.run(key, p.id, JSON.stringify(probs.map(round)), uncertaintyMargin(probs, clf.thresholds));
      });
    }).immediate();
    scored += block.length;
    opts.onProgress?.(kept + scored, total);
  }
  return { scored, kept };
}

/** Every post with its margin under `key` (undefined for a post the run has not scored). */
export function planCandidates(store: LabelStore, key: string | undefined): PlanCandidate[] {
  const rows = store.db
    .prepare(
      "SELECT p.id AS post, s.margin FROM posts p LEFT JOIN scores s ON s.post = p.id AND s.run = ? ORDER BY p.id",
    )
    .all(key ?? "") as { post: number; margin: number | null }[];
  return rows.map((r) => ({ post: r.post, margin: r.margin ?? undefined }));
}

function round(p: number): number {
  return Math.round(p * 1e6) / 1e6;
}
