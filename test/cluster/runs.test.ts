// The queue with other runs and with restarts, in one process (coordinator and workers through the
// library API, on a real redis-server on a free loopback port): a quantized run and a tfidf-lr run
// give byte-identical output to single-machine predict; `predict --queue` and `tweets score
// --queue` resume an interrupted output through `<out>.state.json` without scoring kept rows again,
// and an explicit resume of another job is refused in one line.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue } from "bullmq";
import { runFingerprint } from "../../src/cluster/fingerprint.js";
import { KEY_PREFIX, quantSpec, queueName } from "../../src/cluster/jobs.js";
import { predictFileOnQueue } from "../../src/cluster/predict.js";
import { parseRedisUrl, type RedisTarget } from "../../src/cluster/redis.js";
import { scoreTweetsOnQueue } from "../../src/cluster/tweets.js";
import { type RunningWorker, startWorker } from "../../src/cluster/worker.js";
import { type LoadClassifierOptions, loadClassifier } from "../../src/predict/classifier.js";
import { predictFile } from "../../src/predict/predict.js";
import type { Classifier } from "../../src/run/types.js";
import { scoreTweets } from "../../src/sources/score.js";
import { train } from "../../src/train/trainer.js";
import { fixture } from "../fixture.js";
import { trainTinyRun } from "../report/trained-run.js";
import { demoTexts } from "../train/helpers.js";
import { startRedis, type TestRedis } from "./redis-server.js";

const ROWS = 1200;
const INT8 = { quantize: "int8", quantBlockSize: 16, quantCache: false } as const;

let dir: string;
let run: string;
let input: string;
let server: TestRedis;
let redis: RedisTarget;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-cluster-runs-"));
  run = await trainTinyRun(join(dir, "train"));
  const texts = demoTexts();
  input = join(dir, "in.jsonl");
  const rows = Array.from({ length: ROWS }, (_, i) => ({ id: `t${i}`, text: texts[i % texts.length] }));
  writeFileSync(input, rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
  mkdirSync(join(dir, "redis"));
  server = await startRedis(join(dir, "redis"));
  redis = parseRedisUrl(server.url);
});

after(async () => {
  await server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

/** `predict` on one machine into `out`. */
async function single(runDir: string, out: string, opts: LoadClassifierOptions = {}): Promise<Buffer> {
  const clf = await loadClassifier(runDir, { threads: 1, ...opts });
  try {
    await predictFile(clf, { input, out });
  } finally {
    await clf.close();
  }
  return readFileSync(out);
}

/** A classifier that counts the texts it scores. */
function counting(clf: Classifier): Classifier & { texts: number } {
  const c = {
    labels: clf.labels,
    thresholds: clf.thresholds,
    texts: 0,
    predict: (texts: string[], o?: { batchSize?: number }) => {
      c.texts += texts.length;
      return clf.predict(texts, o);
    },
    close: () => clf.close(),
  };
  return c;
}

async function withWorker<T>(
  opts: Partial<Parameters<typeof startWorker>[0]>,
  job: (w: RunningWorker) => Promise<T>,
): Promise<T> {
  const w = await startWorker({ redis, run, threads: 1, ...opts });
  try {
    return await job(w);
  } finally {
    await w.close();
  }
}

/** Lines in a file (0 when it does not exist). */
const lineCount = (file: string) =>
  existsSync(file) ? readFileSync(file, "utf8").split("\n").length - 1 : 0;

/** A signal aborted once `file` holds at least `rows` lines. */
function abortAfter(file: string, rows: number): AbortSignal {
  const ac = new AbortController();
  const timer = setInterval(() => {
    if (lineCount(file) >= rows) {
      ac.abort();
      clearInterval(timer);
    }
  }, 2);
  ac.signal.addEventListener("abort", () => clearInterval(timer));
  setTimeout(() => clearInterval(timer), 120_000).unref();
  return ac.signal;
}

test("a quantized run: workers started with --quantize give predict --quantize's bytes", async () => {
  const expected = await single(run, join(dir, "int8-single.jsonl"), INT8);
  const plain = await single(run, join(dir, "plain-single.jsonl"));
  assert.ok(
    !expected.equals(plain),
    "int8 and float32 outputs are the same: the test could not tell them apart",
  );
  const out = join(dir, "int8-queue.jsonl");
  await withWorker({ ...INT8 }, async (w) => {
    assert.deepEqual(w.quant, { scheme: "int8", blockSize: 16 });
    await predictFileOnQueue({ redis, run, input, out, chunkSize: 300, ...INT8 });
  });
  assert.ok(readFileSync(out).equals(expected), "queued int8 output differs from predict --quantize int8");
});

test("a worker refuses a job made for another quantization (one clear reason)", async () => {
  const fingerprint = await runFingerprint(run);
  const spec = quantSpec(INT8);
  const queue = new Queue(queueName(fingerprint, spec), { connection: redis.options, prefix: KEY_PREFIX });
  try {
    await withWorker({ ...INT8 }, async () => {
      const job = await queue.add(
        "chunk",
        {
          v: 2,
          run: fingerprint,
          quant: null,
          ns: "x",
          chunk: 0,
          first: 0,
          block: 256,
          batchSize: 16,
          texts: ["a"],
        },
        { jobId: "mismatch-0", removeOnFail: false },
      );
      for (let i = 0; (await job.getState()) !== "failed"; i++) {
        assert.ok(i < 2000, "the job was not refused");
        await sleep(10);
      }
      const failed = await queue.getJob("mismatch-0");
      assert.match(
        failed?.failedReason ?? "",
        /was made for --quantize none, this worker loads the run with int8 \(block 16\)/,
      );
    });
  } finally {
    await queue.obliterate({ force: true });
    await queue.close();
  }
});

test("a tfidf-lr run on the queue: byte-identical to predict; its model/ files are in the fingerprint", async () => {
  const tfidf = join(dir, "tfidf");
  await train(
    {
      model: "tfidf-lr",
      data: fixture("data/inspection-ai/subset.csv"),
      preset: "inspection-ai",
      labels: ["卑語", "差別", "迷惑行為"],
      out: tfidf,
      seed: 3,
    },
    { progress: "quiet" },
  );
  const expected = await single(tfidf, join(dir, "tfidf-single.jsonl"));
  const out = join(dir, "tfidf-queue.jsonl");
  await withWorker({ run: tfidf }, () =>
    predictFileOnQueue({ redis, run: tfidf, input, out, chunkSize: 500 }),
  );
  assert.ok(readFileSync(out).equals(expected), "queued tfidf-lr output differs from predict's");

  // Retrained weights with the same config must not pass for the same run on the queue.
  const before = await runFingerprint(tfidf);
  const weights = join(tfidf, "model", "weights.safetensors");
  const bytes = readFileSync(weights);
  bytes[bytes.length - 1] ^= 1;
  writeFileSync(weights, bytes);
  assert.notEqual(await runFingerprint(tfidf), before);
});

test("predict --queue resumes through <out>.state.json and refuses another job's partial output", async () => {
  const expected = await single(run, join(dir, "resume-single.jsonl"));
  const out = join(dir, "resume-queue.jsonl");
  const base = { redis, run, input, out, chunkSize: 200, inFlight: 1 };
  const clf = counting(await loadClassifier(run, { threads: 1 }));
  await withWorker({ classifier: clf }, async () => {
    const first = await predictFileOnQueue({ ...base, signal: abortAfter(`${out}.partial`, 200) });
    assert.ok(first.interrupted && first.rows >= 200 && first.rows < ROWS, `${first.rows} rows`);
    assert.ok(existsSync(`${out}.state.json`) && !existsSync(`${out}.queue.json`));
    assert.equal(JSON.parse(readFileSync(`${out}.state.json`, "utf8")).rows, first.rows);

    // Asked to resume with another text field: one line naming the difference, nothing changed.
    const kept = readFileSync(`${out}.partial`);
    await assert.rejects(predictFileOnQueue({ ...base, resume: true, textField: "id" }), (err: Error) => {
      assert.match(err.message, /cannot resume: it was made with textField null, not "id"/);
      assert.equal(err.message.split("\n").length, 1, err.message);
      return true;
    });
    assert.ok(readFileSync(`${out}.partial`).equals(kept));

    // The same job again (unasked, then asked): only the rows not on disk are scored.
    const second = await predictFileOnQueue({ ...base, resume: true });
    assert.equal(second.resumedRows, first.rows);
    assert.equal(second.rows, ROWS);
  });
  assert.ok(clf.texts <= ROWS, `${clf.texts} texts scored for ${ROWS} rows: kept rows were scored again`);
  assert.ok(readFileSync(out).equals(expected), "resumed queue output differs from predict's");
});

test("tweets score --queue resumes: kept tweets are not scored again; same file and summary as tweets score", async () => {
  const texts = demoTexts();
  const tweets = join(dir, "tweets.jsonl");
  const n = 900;
  writeFileSync(
    tweets,
    Array.from({ length: n }, (_, i) =>
      JSON.stringify({
        id: String(5000 + i),
        text: texts[(i * 7) % texts.length],
        created_at: null,
        author_id: "1",
      }),
    ).join("\n"),
  );
  const local = await loadClassifier(run, { threads: 1 });
  try {
    await scoreTweets(local, tweets, join(dir, "tw-local", "scored.jsonl"), { chartBase: null });
  } finally {
    await local.close();
  }
  const out = join(dir, "tw-queue", "scored.jsonl");
  const opts = { redis, run, chunkSize: 128, inFlight: 1, chartBase: null };
  const clf = counting(await loadClassifier(run, { threads: 1 }));
  await withWorker({ classifier: clf }, async () => {
    await assert.rejects(
      scoreTweetsOnQueue(tweets, out, { ...opts, signal: abortAfter(`${out}.partial`, 128) }),
      /interrupted: \d+ tweets kept in .*scored\.jsonl\.partial/,
    );
    const kept = lineCount(`${out}.partial`);
    assert.ok(kept >= 128 && kept < n, `${kept} tweets kept`);
    await scoreTweetsOnQueue(tweets, out, opts); // the same command again
  });
  assert.ok(clf.texts <= n, `${clf.texts} texts scored for ${n} tweets: kept tweets were scored again`);
  const read = (d: string, f: string) => readFileSync(join(dir, d, f));
  assert.ok(
    read("tw-queue", "scored.jsonl").equals(read("tw-local", "scored.jsonl")),
    "scored tweets differ",
  );
  const summary = (d: string) => ({ ...JSON.parse(read(d, "summary.json").toString()), output: undefined });
  assert.deepEqual(summary("tw-queue"), summary("tw-local"));
});

test("predict --queue reads its input as predict does: invalid UTF-8 and cut texts are counted alike; --max-text-bytes stops it", async () => {
  const texts = demoTexts();
  const odd = join(dir, "odd.jsonl");
  const lines = Array.from({ length: 400 }, (_, i) =>
    Buffer.from(`${JSON.stringify({ id: i, text: i % 7 === 0 ? texts[i].repeat(8) : texts[i] })}\n`),
  );
  lines[5] = Buffer.concat([Buffer.from('{"id":5,"text":"bad '), Buffer.from([0xff]), Buffer.from('"}\n')]);
  writeFileSync(odd, Buffer.concat(lines));
  const clf = await loadClassifier(run, { threads: 1 });
  const expected = await predictFile(clf, { input: odd, out: join(dir, "odd-single.jsonl") }).finally(() =>
    clf.close(),
  );
  assert.ok((expected.truncatedRows ?? 0) > 0 && expected.invalidUtf8Lines === 1, JSON.stringify(expected));
  const out = join(dir, "odd-queue.jsonl");
  const got = await withWorker({}, () => predictFileOnQueue({ redis, run, input: odd, out, chunkSize: 150 }));
  assert.ok(readFileSync(out).equals(readFileSync(join(dir, "odd-single.jsonl"))));
  assert.equal(got.truncatedRows, expected.truncatedRows);
  assert.equal(got.invalidUtf8Lines, 1);
  assert.equal(got.firstInvalidUtf8Line, 6);
  await assert.rejects(
    predictFileOnQueue({ redis, run, input: odd, out: join(dir, "odd-limit.jsonl"), maxTextBytes: 100 }),
    /odd\.jsonl:1: field "text": the text is \d+ bytes, more than --max-text-bytes 100/,
  );
});
