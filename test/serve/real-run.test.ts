// `toxlora serve` on a run the trainer made: the API answers with the run's labels, thresholds and
// the classifier's own probabilities, also when concurrent requests are batched together.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { loadClassifier } from "../../src/predict/classifier.js";
import type { TrainedClassifier } from "../../src/run/types.js";
import { RUN_FILES } from "../../src/run/types.js";
import { createServer, type RunningServer } from "../../src/serve/server.js";
import { TRAINED_LABELS, trainTinyRun } from "../report/trained-run.js";

const TEXTS = [
  "このアニメの作画は本当に素晴らしかった",
  "ネコ耳族はみんな不潔で気持ち悪い",
  "あの会社の対応は最低だ、二度と買わない",
  "今日は天気が良いので散歩に行きました",
  "短い",
  "ねえ、商店街のラーメン屋のランチがおいしかった！",
];

let dir: string;
let classifier: TrainedClassifier;
let server: RunningServer;
let runDir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-serve-run-"));
  runDir = await trainTinyRun(dir);
  classifier = await loadClassifier(runDir);
  server = await createServer(classifier, { port: 0, maxBatch: 8, batchWaitMs: 20 });
});
after(async () => {
  await server.close();
  await classifier.close();
  await rm(dir, { recursive: true, force: true });
});

it("serves the run's labels, thresholds and probabilities", async () => {
  const thresholds = JSON.parse(await readFile(join(runDir, RUN_FILES.thresholds), "utf8"));
  const labels = await (await fetch(`${server.url}/v1/labels`)).json();
  assert.deepEqual(labels, { labels: TRAINED_LABELS, thresholds: thresholds.thresholds });

  const expected = await classifier.probs(TEXTS);
  // One request with every text, then one request per text, all at once (batched by the server).
  const together = (await (
    await fetch(`${server.url}/v1/classify`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ texts: TEXTS }),
    })
  ).json()) as { results: unknown[] };
  const apart = await Promise.all(
    TEXTS.map(async (t) => {
      const r = await fetch(`${server.url}/v1/classify`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ texts: [t] }),
      });
      return ((await r.json()) as { results: unknown[] }).results[0];
    }),
  );
  for (const results of [together.results, apart]) {
    (results as { probs: Record<string, number>; decisions: Record<string, boolean> }[]).forEach((r, i) => {
      TRAINED_LABELS.forEach((l, j) => {
        const want = expected[i]?.[j] as number;
        const p = r.probs[l] as number;
        assert.ok(Math.abs(p - want) < 1e-5, `text ${i} ${l}: served ${p}, classifier ${want}`);
        assert.equal(r.decisions[l], p >= thresholds.thresholds[j], `text ${i} ${l} decision`);
      });
    });
  }
});
