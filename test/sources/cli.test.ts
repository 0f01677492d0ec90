// End-to-end: the real CLI process (`node --import tsx src/cli/main.ts tweets …`) against the loopback
// X API imitation. Slower than the library tests, so only the paths that involve the process itself:
// real sleeps for a 429, Ctrl-C (SIGINT), exit codes, and that the token never reaches any output.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type MockX, makeTweets, startMockX, TOKEN } from "./mock-x.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Start the CLI; `onStderr` sees stderr as it arrives (e.g. to send SIGINT at the right moment). */
function cli(
  args: string[],
  env: Record<string, string | undefined> = {},
): { done: Promise<Run>; pid: number } {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, X_BEARER_TOKEN: TOKEN, ...env };
  delete childEnv.NODE_TEST_CONTEXT; // the test runner's marker; the child is not a test process
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    cwd: REPO,
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString("utf8");
  });
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString("utf8");
  });
  const done = new Promise<Run>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  return { done, pid: child.pid as number };
}

function lines(file: string): { id: string }[] {
  const text = readFileSync(file, "utf8");
  assert.ok(text === "" || text.endsWith("\n"), "only complete lines");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as { id: string });
}

function assertNoToken(run: Run, ...files: string[]) {
  assert.ok(!run.stdout.includes(TOKEN), "token not on stdout");
  assert.ok(!run.stderr.includes(TOKEN), "token not on stderr");
  for (const f of files)
    if (existsSync(f)) assert.ok(!readFileSync(f, "utf8").includes(TOKEN), `token not in ${f}`);
}

describe("toxlora tweets (CLI process)", () => {
  const tweets = makeTweets(25);
  let mock: MockX;
  let dir: string;
  let out: string;
  let state: string;
  before(async () => {
    mock = await startMockX(tweets);
  });
  after(async () => {
    await mock.close();
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "toxlora-tweets-cli-"));
    out = join(dir, "tweets.jsonl");
    state = `${out}.state.json`;
    mock.requests.length = 0;
    mock.script.clear();
  });

  const fetchArgs = () => [
    "tweets",
    "fetch",
    "--preset",
    "anime",
    "--out",
    out,
    "--page-size",
    "10",
    "--base-url",
    mock.baseUrl,
  ];

  test("fetch with a 429 mid-way: waits (countdown on stderr), continues, never writes the token", async () => {
    mock.script.set(2, {
      status: 429,
      headers: { "x-rate-limit-reset": String(Math.floor(Date.now() / 1000) + 1) },
      body: JSON.stringify({ title: "Too Many Requests", detail: "Too Many Requests", status: 429 }),
    });
    const run = await cli(fetchArgs()).done;
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      lines(out).map((r) => r.id),
      tweets.map((t) => t.id),
    );
    assert.match(run.stderr, /query: \(アニメ OR #アニメ .*\) lang:ja -is:retweet/);
    assert.match(run.stderr, /rate limited: waiting \d+ s/);
    assert.match(run.stdout, /25 tweets \(25 new\) — all results fetched/);
    assert.equal(mock.requests.length, 4);
    assert.equal(mock.requests[0]?.authorization, `Bearer ${TOKEN}`);
    assertNoToken(run, out, state);
  });

  test("Ctrl-C during a request leaves a valid file; re-running completes it without duplicates", async () => {
    let release = () => {};
    mock.script.set(3, { hold: new Promise<void>((r) => (release = r)) });
    const first = cli(fetchArgs());
    while (mock.requests.length < 3) await new Promise((r) => setTimeout(r, 20));
    process.kill(first.pid, "SIGINT");
    const run = await first.done;
    release();
    assert.equal(run.code, 130, run.stderr);
    assert.match(run.stderr, /interrupted/);
    assert.match(run.stdout, /20 tweets .*re-run the same command to continue/);
    assert.equal(lines(out).length, 20);
    assert.equal((JSON.parse(readFileSync(state, "utf8")) as { nextToken: string }).nextToken, "cursor-20");

    const again = await cli(fetchArgs()).done;
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /resuming: 20 tweets already/);
    assert.deepEqual(
      lines(out).map((r) => r.id),
      tweets.map((t) => t.id),
    );
    assertNoToken(run, out, state);
    assertNoToken(again, out, state);
  });

  test("401: exit 1 with one line on stderr, token not echoed", async () => {
    const run = await cli(fetchArgs(), { X_BEARER_TOKEN: "not-the-right-token-777" }).done;
    assert.equal(run.code, 1);
    const errLines = run.stderr.trim().split("\n");
    assert.match(errLines.at(-1) ?? "", /^toxlora: X API rejected the bearer token \(401 Unauthorized\)/);
    assert.ok(!run.stderr.includes("not-the-right-token-777"));
    assert.ok(!run.stdout.includes("not-the-right-token-777"));
  });

  test("no X_BEARER_TOKEN: a clear error before any request", async () => {
    const run = await cli(fetchArgs(), { X_BEARER_TOKEN: "" }).done;
    assert.equal(run.code, 1);
    assert.match(run.stderr, /X_BEARER_TOKEN is not set/);
    assert.equal(mock.requests.length, 0);
  });

  test("import an archive tweets.js", async () => {
    const js = join(dir, "tweets.js");
    writeFileSync(
      js,
      'window.YTD.tweets.part0 = [ { "tweet" : { "id_str" : "1788000000000000009", "full_text" : "＠ｋａｎａ アニメ https://t.co/z", "created_at" : "Wed May 08 02:00:00 +0000 2024", "lang" : "ja" } } ]',
    );
    const dest = join(dir, "imported.jsonl");
    const run = await cli(["tweets", "import", js, "--out", dest, "--normalize"]).done;
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /imported\.jsonl: 1 tweets/);
    const row = JSON.parse(readFileSync(dest, "utf8")) as { id: string; text_normalized: string };
    assert.equal(row.id, "1788000000000000009");
    assert.equal(row.text_normalized, "<USER> アニメ <URL>");
  });
});
