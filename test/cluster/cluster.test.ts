// `predict --queue` with `toxlora worker`s on a real redis-server (started here on a free loopback
// port): the output is byte-identical to single-machine `predict`, also when a worker is killed or
// Redis restarts mid-run; a row that breaks the tokenizer stops the run naming it; the password
// appears in no file or log; no text is left in Redis.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { loadClassifier } from "../../src/predict/classifier.js";
import { predictFile } from "../../src/predict/predict.js";
import { trainTinyRun } from "../report/trained-run.js";
import { demoTexts } from "../train/helpers.js";
import { startRedis, type TestRedis } from "./redis-server.js";

const MAIN = resolve(process.cwd(), "src/cli/main.ts");
const PASSWORD = "pw-Zq7xK2-never-printed";
const ROWS = 3000;

let dir: string;
let run: string;
let input: string;
let single: string;
let redis: TestRedis;
const logs: string[] = [];
const children = new Set<ChildProcess>();

interface Proc {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

function cli(args: string[]): Proc {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let out = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    out += d;
  });
  const exit = once(child, "exit").then(([code]) => {
    children.delete(child);
    logs.push(out);
    return code as number | null;
  });
  return { child, output: () => out, exit };
}

function worker(runDir = run, extra: string[] = []): Proc {
  return cli([
    "worker",
    "--queue",
    redis.url,
    "--run",
    runDir,
    "--threads",
    "1",
    "--lock-seconds",
    "1",
    ...extra,
  ]);
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGTERM");
  await p.exit;
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const lineCount = (file: string) =>
  existsSync(file) ? readFileSync(file, "utf8").split("\n").length - 1 : 0;

function coordinator(out: string, extra: string[] = []): Proc {
  return cli(["predict", "--run", run, "--input", input, "--out", out, "--queue", redis.url, ...extra]);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-cluster-"));
  run = await trainTinyRun(join(dir, "train"));
  const texts = demoTexts();
  input = join(dir, "in.jsonl");
  writeFileSync(
    input,
    Array.from(
      { length: ROWS },
      (_, i) => `${JSON.stringify({ id: `t${i}`, text: texts[i % texts.length] })}\n`,
    ).join(""),
  );
  single = join(dir, "single.jsonl");
  const clf = await loadClassifier(run, { threads: 1 });
  try {
    await predictFile(clf, { input, out: single });
  } finally {
    await clf.close();
  }
  mkdirSync(join(dir, "redis"));
  redis = await startRedis(join(dir, "redis"), PASSWORD);
});

after(async () => {
  for (const c of children) c.kill("SIGKILL");
  await redis?.kill();
  rmSync(dir, { recursive: true, force: true });
});

/** Every file under `root`, recursively. */
function files(root: string): string[] {
  return readdirSync(root, { withFileTypes: true }).flatMap((e) => {
    const p = join(root, e.name);
    return e.isDirectory() ? files(p) : e.isFile() ? [p] : [];
  });
}

/** All values stored in Redis, as text. */
async function redisContents(): Promise<string> {
  const r = new Redis(redis.port, "127.0.0.1", { password: PASSWORD });
  try {
    const parts: string[] = [];
    for (const key of await r.keys("*")) {
      const type = await r.type(key);
      if (type === "hash") parts.push(JSON.stringify(await r.hgetall(key)));
      else if (type === "list") parts.push(JSON.stringify(await r.lrange(key, 0, -1)));
      else if (type === "zset") parts.push(JSON.stringify(await r.zrange(key, 0, -1)));
      else if (type === "stream") parts.push(JSON.stringify(await r.xrange(key, "-", "+")));
      else if (type === "string") parts.push((await r.get(key)) ?? "");
      else if (type === "set") parts.push(JSON.stringify(await r.smembers(key)));
    }
    return parts.join("\n");
  } finally {
    r.disconnect();
  }
}

test("coordinator + 2 workers on 3,000 rows: byte-identical to predict; no text left in Redis", async () => {
  const workers = [worker(), worker()];
  // Both listening before the first chunk, so that a slow start (a loaded machine) cannot leave one idle.
  await until("both workers", () => workers.every((w) => w.output().includes("ready")));
  const out = join(dir, "two-workers.jsonl");
  // 700-row chunks do not line up with predict's 256-row classifier calls: workers cut them the same.
  const c = coordinator(out, ["--chunk-size", "700"]);
  assert.equal(await c.exit, 0, c.output());
  assert.ok(readFileSync(out).equals(readFileSync(single)), "cluster output differs from predict's");
  assert.ok(!existsSync(`${out}.partial`));
  for (const w of workers) await stop(w);
  assert.ok(
    workers.every((w) => /chunk \S+: \d+ rows/.test(w.output())),
    "both workers scored chunks",
  );
  const stored = await redisContents();
  const leftover = [...new Set(demoTexts())].filter((t) => t.length >= 6 && stored.includes(t));
  assert.deepEqual(leftover, [], "texts left in Redis after the run");
});

test("tweets score --queue writes the same scored file and summary as tweets score", async () => {
  const texts = demoTexts();
  const tweets = join(dir, "tweets.jsonl");
  writeFileSync(
    tweets,
    Array.from({ length: 700 }, (_, i) =>
      JSON.stringify({
        id: String(9000 + i),
        text: texts[(i * 7) % texts.length],
        created_at: null,
        author_id: "1",
      }),
    ).join("\n"),
  );
  const local = cli([
    "tweets",
    "score",
    "--run",
    run,
    "--input",
    tweets,
    "--out",
    join(dir, "tw-local", "scored.jsonl"),
    "--no-chart",
  ]);
  assert.equal(await local.exit, 0, local.output());
  const w = worker();
  const q = cli([
    ...["tweets", "score", "--run", run, "--input", tweets, "--out", join(dir, "tw-queue", "scored.jsonl")],
    ...["--no-chart", "--queue", redis.url, "--chunk-size", "150"],
  ]);
  assert.equal(await q.exit, 0, q.output());
  await stop(w);
  const read = (d: string, f: string) => readFileSync(join(dir, d, f));
  assert.ok(
    read("tw-queue", "scored.jsonl").equals(read("tw-local", "scored.jsonl")),
    "scored tweets differ",
  );
  const summary = (d: string) => ({ ...JSON.parse(read(d, "summary.json").toString()), output: undefined });
  assert.deepEqual(summary("tw-queue"), summary("tw-local"));
});

test("a worker SIGKILLed mid-chunk: its chunk is taken again and every row is written once", async () => {
  const a = worker();
  await until("worker a", () => a.output().includes("ready"));
  const out = join(dir, "killed.jsonl");
  const c = coordinator(out, ["--chunk-size", "1500"]);
  const r = new Redis(redis.port, "127.0.0.1", { password: PASSWORD });
  try {
    // Kill the only worker while it holds a chunk, then start another.
    await until("an active chunk", async () => {
      for (const key of await r.keys("toxlora:*:active")) if ((await r.llen(key)) > 0) return true;
      return false;
    });
    a.child.kill("SIGKILL");
    await a.exit;
  } finally {
    r.disconnect();
  }
  const b = worker();
  assert.equal(await c.exit, 0, c.output());
  await stop(b);
  assert.match(b.output(), /abandoned by its worker; queued again/);
  assert.ok(
    readFileSync(out).equals(readFileSync(single)),
    "output after a killed worker differs from predict's",
  );
});

test("Redis restarting mid-run (losing its data): clients reconnect and the output is still identical", async () => {
  const w = worker();
  const out = join(dir, "restart.jsonl");
  const c = coordinator(out, ["--chunk-size", "500"]);
  // Freeze the worker once the first chunk is written, restart Redis under everyone, then go on.
  await until("the first chunk", () => lineCount(`${out}.partial`) >= 500);
  w.child.kill("SIGSTOP");
  assert.ok(lineCount(`${out}.partial`) < ROWS, "the run finished before Redis could be restarted");
  await redis.restart();
  w.child.kill("SIGCONT");
  assert.equal(await c.exit, 0, c.output());
  await stop(w);
  assert.match(c.output(), /missing from Redis; queued again/);
  assert.ok(
    readFileSync(out).equals(readFileSync(single)),
    "output after a Redis restart differs from predict's",
  );
});

test("a row that breaks the tokenizer stops the run after --max-attempts, naming the row; no final file", async () => {
  // The same run on a tokenizer without an unknown token: a character outside its vocabulary throws.
  const poisonModel = join(dir, "poison-model");
  cpSync(join(dir, "train", "model"), poisonModel, { recursive: true });
  const tokFile = join(poisonModel, "tokenizer.json");
  const tok = JSON.parse(readFileSync(tokFile, "utf8"));
  tok.model = { type: "WordLevel", vocab: tok.model.vocab };
  writeFileSync(tokFile, JSON.stringify(tok));
  const poisonRun = join(dir, "poison-run");
  cpSync(run, poisonRun, { recursive: true });
  const config = JSON.parse(readFileSync(join(poisonRun, "config.json"), "utf8"));
  writeFileSync(
    join(poisonRun, "config.json"),
    JSON.stringify({ ...config, model: poisonModel, modelDir: poisonModel }),
  );
  const poisonInput = join(dir, "poison.jsonl");
  const rows = readFileSync(input, "utf8").split("\n").slice(0, 1000);
  rows[777] = JSON.stringify({ id: "bad", text: "雪だるま☃です" });
  writeFileSync(poisonInput, `${rows.join("\n")}\n`);

  const w = worker(poisonRun);
  const out = join(dir, "poison-out.jsonl");
  const c = cli([
    "predict",
    ...["--run", poisonRun, "--input", poisonInput, "--out", out, "--queue", redis.url],
    ...["--chunk-size", "300", "--max-attempts", "2", "--quiet"],
  ]);
  assert.equal(await c.exit, 1, c.output());
  await stop(w);
  assert.match(
    c.output(),
    /chunk 2 \(rows 600–899\) failed after 2 attempts: row 777 \(line 778 of .*poison\.jsonl\)/,
  );
  assert.match(c.output(), /is unknown/);
  assert.ok(!existsSync(out), "no final output after a failed run");
});

test("Redis unreachable at start: one clear line, password masked", async () => {
  const url = `redis://:${PASSWORD}@127.0.0.1:1`;
  const c = cli([
    "predict",
    "--run",
    run,
    "--input",
    input,
    "--out",
    join(dir, "never.jsonl"),
    "--queue",
    url,
  ]);
  assert.equal(await c.exit, 1);
  const lines = c.output().trim().split("\n");
  assert.equal(lines.length, 1, c.output());
  assert.match(lines[0], /^toxlora: cannot use Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1: .*ECONNREFUSED/);
  const w = cli(["worker", "--queue", url, "--run", run]);
  assert.equal(await w.exit, 1);
  assert.match(w.output().trim(), /^toxlora: cannot use Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1: [^\n]*$/);
});

test("from the CLI: worker --quantize and predict --queue --quantize give predict --quantize's bytes", async () => {
  const quant = ["--quantize", "int8", "--quant-block-size", "16", "--no-quant-cache"];
  const small = join(dir, "small.jsonl");
  writeFileSync(small, `${readFileSync(input, "utf8").split("\n").slice(0, 300).join("\n")}\n`);
  const local = cli([
    "predict",
    "--run",
    run,
    "--input",
    small,
    "--out",
    join(dir, "q-local.jsonl"),
    ...quant,
  ]);
  assert.equal(await local.exit, 0, local.output());
  const w = worker(run, quant);
  const out = join(dir, "q-queue.jsonl");
  const c = cli(["predict", "--run", run, "--input", small, "--out", out, "--queue", redis.url, ...quant]);
  assert.equal(await c.exit, 0, c.output());
  await stop(w);
  assert.match(w.output(), /quantize int8 \(block 16\)/);
  assert.ok(readFileSync(out).equals(readFileSync(join(dir, "q-local.jsonl"))), "queued int8 output differs");
});

test("the password appears in no file and no log of any run above", () => {
  assert.ok(logs.length >= 8, `${logs.length} processes logged`);
  for (const log of logs) assert.ok(!log.includes(PASSWORD), `password in a log:\n${log}`);
  for (const file of files(dir)) {
    if (statSync(file).size > 50 << 20) continue;
    assert.ok(!readFileSync(file, "latin1").includes(PASSWORD), `password in ${file}`);
  }
});
