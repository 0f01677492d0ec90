import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { buildSearchQuery } from "../../src/sources/query.js";
import type { TweetRecord } from "../../src/sources/tweet.js";
import {
  type FetchState,
  type FetchTweetsOptions,
  fetchTweets,
  stateFileFor,
  TWEET_FIELDS,
  XApiError,
} from "../../src/sources/x-api.js";
import { type ApiTweet, type MockX, makeTweets, startMockX, TOKEN } from "./mock-x.js";

const NOW = Date.UTC(2024, 4, 2, 0, 0, 0); // the injected clock

/** Options with an injected clock and sleep so retries and rate limits cost no real time. */
function harness(mock: MockX, out: string, extra: Partial<FetchTweetsOptions> = {}) {
  const sleeps: number[] = [];
  const logs: string[] = [];
  let clock = NOW;
  const opts: FetchTweetsOptions = {
    query: "アニメ lang:ja -is:retweet",
    out,
    bearerToken: TOKEN,
    baseUrl: mock.baseUrl,
    pageSize: 10,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
    now: () => clock,
    random: () => 0.5,
    log: (l) => logs.push(l),
    ...extra,
  };
  return { opts, sleeps, logs };
}

function readRows(file: string): TweetRecord[] {
  const text = readFileSync(file, "utf8");
  assert.ok(text === "" || text.endsWith("\n"), "file ends with a complete line");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as TweetRecord);
}

function readState(out: string): FetchState {
  return JSON.parse(readFileSync(stateFileFor(out), "utf8")) as FetchState;
}

function assertComplete(rows: TweetRecord[], tweets: ApiTweet[]) {
  assert.deepEqual(
    rows.map((r) => r.id),
    tweets.map((t) => t.id),
    "every tweet exactly once, in API order",
  );
}

describe("fetchTweets against a local X API v2 imitation", () => {
  const tweets = makeTweets(25); // 3 pages of 10, 10, 5
  let mock: MockX;
  let dir: string;
  let out: string;

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
    dir = mkdtempSync(join(tmpdir(), "toxlora-tweets-fetch-"));
    out = join(dir, "tweets.jsonl");
    mock.requests.length = 0;
    mock.script.clear();
    for (const k of Object.keys(mock.pageHeaders)) delete mock.pageHeaders[k];
    for (const k of Object.keys(mock.pageExtra)) delete mock.pageExtra[k];
  });

  test("3-page fetch: every tweet once, full fields, pagination with next_token", async () => {
    const { opts } = harness(mock, out);
    const res = await fetchTweets(opts);
    assert.equal(res.stop, "end");
    assert.equal(res.written, 25);
    assert.equal(res.pages, 3);
    const rows = readRows(out);
    assertComplete(rows, tweets);

    // Request shape.
    assert.equal(mock.requests.length, 3);
    const [r1, r2, r3] = mock.requests;
    assert.equal(r1?.path, "/2/tweets/search/recent");
    assert.equal(r1?.authorization, `Bearer ${TOKEN}`);
    assert.equal(r1?.params.get("query"), "アニメ lang:ja -is:retweet");
    assert.equal(r1?.params.get("max_results"), "10");
    assert.deepEqual(r1?.params.get("tweet.fields")?.split(","), TWEET_FIELDS);
    for (const f of [
      "id",
      "text",
      "created_at",
      "lang",
      "author_id",
      "conversation_id",
      "public_metrics",
      "entities",
    ]) {
      assert.ok(TWEET_FIELDS.includes(f), f);
    }
    assert.equal(r1?.params.get("expansions"), "author_id");
    assert.equal(r1?.params.has("next_token"), false);
    assert.equal(r2?.params.get("next_token"), "cursor-10");
    assert.equal(r3?.params.get("next_token"), "cursor-20");

    // Row shape: ids stay exact strings, usernames come from includes.users.
    const first = rows[0] as TweetRecord;
    const t0 = tweets[0] as ApiTweet;
    assert.equal(first.id, "1790000000000000000");
    assert.equal(first.text, t0.text);
    assert.equal(first.created_at, t0.created_at);
    assert.equal(first.author_id, "1000");
    assert.equal(first.author_username, "user1000");
    assert.equal(first.lang, "ja");
    assert.equal(first.conversation_id, t0.conversation_id);
    assert.deepEqual(first.public_metrics, t0.public_metrics);
    assert.equal(first.source, "x-api-v2");
    assert.equal(first.text_normalized, undefined);

    const state = readState(out);
    assert.equal(state.done, true);
    assert.equal(state.count, 25);
    assert.equal(state.query, "アニメ lang:ja -is:retweet");

    // Re-running a finished fetch makes no request and writes nothing.
    const again = await fetchTweets(harness(mock, out).opts);
    assert.equal(again.stop, "already-complete");
    assert.equal(mock.requests.length, 3);
    assert.equal(readRows(out).length, 25);
  });

  test("--normalize adds text_normalized and keeps the raw text", async () => {
    out = join(dir, "not", "yet", "there.jsonl"); // the output directory is created
    const { opts } = harness(mock, out, { normalize: true, max: 10 });
    await fetchTweets(opts);
    const row = readRows(out)[0] as TweetRecord;
    assert.equal(row.text, (tweets[0] as ApiTweet).text);
    assert.equal(row.text_normalized, "アニメ 0 話がよかった <USER> <URL>");
  });

  test("429 mid-way: waits for x-rate-limit-reset with a countdown, then continues", async () => {
    const resetEpochS = Math.floor(NOW / 1000) + 2;
    mock.script.set(2, { status: 429, headers: { "x-rate-limit-reset": String(resetEpochS) } });
    const statuses: string[] = [];
    const { opts, sleeps, logs } = harness(mock, out, { status: (s) => statuses.push(s) });
    const res = await fetchTweets(opts);
    assert.equal(res.stop, "end");
    assertComplete(readRows(out), tweets);
    assert.equal(mock.requests.length, 4, "the rate-limited page was requested again");
    assert.equal(mock.requests[2]?.params.get("next_token"), "cursor-10");
    const waited = sleeps.reduce((a, b) => a + b, 0);
    assert.ok(waited >= 2000 && waited <= 4000, `waited until the reset (+ margin): ${waited} ms`);
    assert.ok(statuses.length >= 2, "countdown shown");
    assert.match(statuses[0] ?? "", /rate limited: waiting \d+ s/);
    assert.ok(logs.some((l) => /page 2: rate limited \(429\)/.test(l)));
  });

  test("x-rate-limit-remaining: 0 → waits for the reset before the next request", async () => {
    mock.pageHeaders["x-rate-limit-remaining"] = "0";
    mock.pageHeaders["x-rate-limit-reset"] = String(Math.floor(NOW / 1000) + 1);
    const { opts, sleeps } = harness(mock, out);
    const res = await fetchTweets(opts);
    assert.equal(res.written, 25);
    assert.ok(sleeps.length > 0, "waited between pages");
  });

  test("two 503s then success: retried with growing, jittered backoff", async () => {
    mock.script.set(2, { status: 503 });
    mock.script.set(3, { status: 503 });
    const { opts, sleeps, logs } = harness(mock, out, { random: () => 0.25 });
    const res = await fetchTweets(opts);
    assert.equal(res.written, 25);
    assertComplete(readRows(out), tweets);
    assert.equal(sleeps.length, 2);
    const [a, b] = sleeps as [number, number];
    // Equal jitter: between half and all of base·2^attempt (base 1 s).
    assert.ok(a >= 500 && a <= 1000, `first backoff ${a}`);
    assert.ok(b >= 1000 && b <= 2000, `second backoff ${b}`);
    assert.ok(b > a);
    assert.equal(logs.filter((l) => /server error 503; retry/.test(l)).length, 2);
  });

  test("different jitter draws give different waits", async () => {
    mock.script.set(1, { status: 500 });
    const low = harness(mock, out, { random: () => 0 });
    await fetchTweets({ ...low.opts, max: 10 });
    rmSync(dir, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), "toxlora-tweets-fetch-"));
    out = join(dir, "tweets.jsonl");
    mock.script.set(mock.requests.length + 1, { status: 500 });
    const high = harness(mock, out, { random: () => 0.999 });
    await fetchTweets({ ...high.opts, max: 10 });
    assert.ok((high.sleeps[0] as number) > (low.sleeps[0] as number));
  });

  test("a dropped connection is retried like a 5xx", async () => {
    mock.script.set(1, { drop: true });
    const { opts, logs } = harness(mock, out);
    const res = await fetchTweets(opts);
    assert.equal(res.written, 25);
    assert.ok(logs.some((l) => /network error/.test(l)));
  });

  test("5xx retries exhausted: resumable error, file valid", async () => {
    for (let n = 2; n <= 4; n++) mock.script.set(n, { status: 502 });
    const { opts } = harness(mock, out, { maxRetries: 2 });
    await assert.rejects(fetchTweets(opts), (err: unknown) => {
      assert.ok(err instanceof XApiError);
      assert.equal(err.kind, "server");
      assert.match(err.message, /10 tweets saved/);
      return true;
    });
    assert.equal(readRows(out).length, 10);
    const res = await fetchTweets(harness(mock, out).opts);
    assert.equal(res.written, 15);
    assertComplete(readRows(out), tweets);
  });

  test("401: stops with a one-line explanation that does not contain the token", async () => {
    const { opts } = harness(mock, out, { bearerToken: "wrong-token-abc" });
    await assert.rejects(fetchTweets(opts), (err: unknown) => {
      assert.ok(err instanceof XApiError);
      assert.equal(err.kind, "unauthorized");
      assert.equal(err.status, 401);
      assert.match(err.message, /401 Unauthorized.*X_BEARER_TOKEN/);
      assert.ok(!err.message.includes("\n"));
      assert.ok(!err.message.includes("wrong-token-abc"));
      return true;
    });
    assert.equal(mock.requests.length, 1, "no retry on 401");
    assert.equal(existsSync(out), false, "no empty output is left behind");
  });

  test("a 200 whose body is only errors is retried, then stops resumably; never marked done", async () => {
    const errorsOnly = { status: 200, body: JSON.stringify({ errors: [{ message: "Service busy" }] }) };
    mock.script.set(2, errorsOnly);
    mock.script.set(3, errorsOnly);
    const { opts, logs } = harness(mock, out, { maxRetries: 1 });
    await assert.rejects(fetchTweets(opts), (err: unknown) => {
      assert.ok(err instanceof XApiError);
      assert.equal(err.kind, "no-results");
      assert.match(err.message, /page 2 with only errors \(Service busy\).*10 tweets saved/);
      return true;
    });
    assert.ok(logs.some((l) => /HTTP 200 with only errors .*retry 1\/1/.test(l)));
    assert.equal(readState(out).done, false);
    assert.equal(readState(out).nextToken, "cursor-10");
    const res = await fetchTweets(harness(mock, out).opts);
    assert.notEqual(res.stop, "already-complete");
    assertComplete(readRows(out), tweets);
  });

  test("a 200 without meta (e.g. {}) is not taken for the last page", async () => {
    mock.script.set(1, { status: 200, body: "{}" });
    const res = await fetchTweets(harness(mock, out).opts);
    assert.equal(mock.requests.length, 4, "retried, then the 3 pages");
    assert.equal(res.stop, "end");
    assertComplete(readRows(out), tweets);
  });

  test("a redirect to another origin is not followed; one within the origin is", async () => {
    const port = new URL(mock.baseUrl).port;
    const path = "/2/tweets/search/recent?query=x&max_results=10";
    mock.script.set(1, { status: 302, headers: { location: `http://localhost:${port}${path}` } });
    mock.script.set(2, { status: 200, body: JSON.stringify({ meta: { result_count: 0 } }) });
    await assert.rejects(fetchTweets(harness(mock, out).opts), (err: unknown) => {
      assert.ok(err instanceof XApiError);
      assert.equal(err.kind, "redirect");
      assert.match(err.message, /another origin, http:\/\/localhost:\d+; not followed/);
      return true;
    });
    assert.equal(mock.requests.length, 1, "the other origin was never asked");
    assert.equal(existsSync(out), false);
    assert.equal(existsSync(stateFileFor(out)), false, "nothing marked done");

    mock.requests.length = 0;
    mock.script.clear();
    mock.script.set(1, { status: 307, headers: { location: `${path}&next_token=cursor-0` } });
    const res = await fetchTweets(harness(mock, out).opts);
    assert.equal(mock.requests[1]?.authorization, `Bearer ${TOKEN}`, "same origin: followed with the token");
    assertComplete(readRows(out), tweets);
    assert.equal(res.stop, "end");
  });

  test("an empty search result still leaves an (empty) output once complete", async () => {
    mock.script.set(1, { status: 200, body: JSON.stringify({ meta: { result_count: 0 } }) });
    const res = await fetchTweets(harness(mock, out).opts);
    assert.equal(res.stop, "end");
    assert.equal(readFileSync(out, "utf8"), "");
  });

  test("401 after a page: what was received is kept, a re-run continues", async () => {
    mock.script.set(2, { status: 401, body: '{"title":"Unauthorized","status":401}' });
    await assert.rejects(fetchTweets(harness(mock, out).opts), /401/);
    assert.equal(readRows(out).length, 10);
    assert.equal(readState(out).nextToken, "cursor-10");
    await fetchTweets(harness(mock, out).opts);
    assertComplete(readRows(out), tweets);
  });

  test("403 explains the access level; usage cap 429 stops instead of waiting", async () => {
    mock.script.set(1, {
      status: 403,
      body: JSON.stringify({
        title: "Forbidden",
        detail: "When authenticating requests, you must use a Project",
      }),
    });
    await assert.rejects(fetchTweets(harness(mock, out, { archive: true }).opts), (err: unknown) => {
      assert.ok(err instanceof XApiError);
      assert.equal(err.kind, "forbidden");
      assert.match(err.message, /403 Forbidden.*Project.*Pro or Enterprise/);
      return true;
    });
    assert.equal(mock.requests[0]?.path, "/2/tweets/search/all");

    const out2 = join(dir, "capped.jsonl");
    mock.script.set(2, {
      status: 429,
      body: JSON.stringify({ title: "UsageCapExceeded", detail: "Usage cap exceeded: Monthly product cap" }),
    });
    const h = harness(mock, out2);
    await assert.rejects(fetchTweets(h.opts), /usage cap/i);
    assert.equal(h.sleeps.length, 0);
  });

  test("a rate-limit reset too far away stops resumably instead of waiting", async () => {
    mock.script.set(2, {
      status: 429,
      headers: { "x-rate-limit-reset": String(Math.floor(NOW / 1000) + 3600) },
    });
    const { opts, sleeps } = harness(mock, out, { maxRateLimitWaitMs: 60_000 });
    await assert.rejects(fetchTweets(opts), /rate limited \(429\) until .*re-run/);
    assert.equal(sleeps.length, 0);
    assert.equal(readRows(out).length, 10);
  });

  test("400 (bad query) reports X's message", async () => {
    mock.script.set(1, {
      status: 400,
      body: JSON.stringify({
        errors: [
          { parameters: { query: ["(("] }, message: "There were errors processing your request: missing )" },
        ],
        title: "Invalid Request",
      }),
    });
    await assert.rejects(
      fetchTweets(harness(mock, out).opts),
      /400: There were errors processing your request/,
    );
  });

  test("partial errors in a 200 page are reported and the page is kept", async () => {
    mock.pageExtra.errors = [{ title: "Not Found Error", detail: "Could not find user with id: [42]." }];
    const { opts, logs } = harness(mock, out);
    await fetchTweets(opts);
    assertComplete(readRows(out), tweets);
    assert.ok(logs.some((l) => /partial error\(s\), e\.g\. Could not find user/.test(l)));
  });

  test("malformed JSON body: clear error, nothing lost, a re-run continues", async () => {
    mock.script.set(2, { status: 200, body: '{"data":[{"id":"1","text":"trunc' });
    await assert.rejects(fetchTweets(harness(mock, out).opts), (err: unknown) => {
      assert.ok(err instanceof XApiError);
      assert.equal(err.kind, "malformed-body");
      assert.match(err.message, /malformed JSON body for page 2 .*10 tweets saved/);
      return true;
    });
    assert.equal(readRows(out).length, 10);
    const state = readState(out);
    assert.equal(state.nextToken, "cursor-10");
    assert.equal(state.done, false);

    const res = await fetchTweets(harness(mock, out).opts);
    assert.equal(res.written, 15);
    assert.equal(res.duplicates, 0);
    assertComplete(readRows(out), tweets);
  });

  test("--max cuts a page short; a re-run fetches the rest with no gap and no duplicate", async () => {
    const first = await fetchTweets(harness(mock, out, { max: 15 }).opts);
    assert.equal(first.stop, "max");
    assert.equal(readRows(out).length, 15);
    assert.equal(mock.requests[1]?.params.get("max_results"), "10");
    // The cut page is requested again next time.
    assert.equal(readState(out).nextToken, "cursor-10");

    const second = await fetchTweets(harness(mock, out).opts);
    assert.equal(second.stop, "end");
    assert.equal(second.written, 10);
    assert.equal(second.duplicates, 5);
    assertComplete(readRows(out), tweets);
  });

  test("aborted after page 2 (Ctrl-C), resumed without duplicates", async () => {
    const ac = new AbortController();
    const { opts } = harness(mock, out, {
      signal: ac.signal,
      log: (l) => {
        if (l.startsWith("page 2:")) ac.abort();
      },
    });
    const res = await fetchTweets(opts);
    assert.equal(res.stop, "interrupted");
    assert.equal(readRows(out).length, 20);
    assert.equal(readState(out).nextToken, "cursor-20");

    const resumed = await fetchTweets(harness(mock, out).opts);
    assert.equal(resumed.written, 5);
    assert.equal(resumed.duplicates, 0);
    assertComplete(readRows(out), tweets);
    assert.equal(mock.requests.at(-1)?.params.get("next_token"), "cursor-20");
  });

  test("abort while a request is in flight keeps the file valid", async () => {
    let release = () => {};
    mock.script.set(2, { hold: new Promise<void>((r) => (release = r)) });
    const ac = new AbortController();
    const { opts } = harness(mock, out, { signal: ac.signal });
    const running = fetchTweets(opts);
    while (mock.requests.length < 2) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    const res = await running;
    release();
    assert.equal(res.stop, "interrupted");
    assert.equal(readRows(out).length, 10);
    await fetchTweets(harness(mock, out).opts);
    assertComplete(readRows(out), tweets);
  });

  test("a half-written last line (crash mid-write) is cut off on resume", async () => {
    await fetchTweets(harness(mock, out, { max: 20 }).opts);
    appendFileSync(out, '{"id":"1790000000000000020","text":"half');
    const { opts, logs } = harness(mock, out);
    const res = await fetchTweets(opts);
    assert.equal(res.written, 5);
    assertComplete(readRows(out), tweets);
    assert.ok(logs.some((l) => /removed an incomplete last line/.test(l)));
  });

  test("state written before the crash, page not yet in state: the page is deduplicated", async () => {
    await fetchTweets(harness(mock, out, { max: 20 }).opts);
    // Simulate a crash after page 2 was appended but before the state advanced past it.
    const s = readState(out);
    writeFileSync(stateFileFor(out), JSON.stringify({ ...s, nextToken: "cursor-10" }));
    const res = await fetchTweets(harness(mock, out).opts);
    assert.equal(res.duplicates, 10);
    assertComplete(readRows(out), tweets);
  });

  test("an output started with another query is refused", async () => {
    await fetchTweets(harness(mock, out, { max: 10 }).opts);
    await assert.rejects(fetchTweets(harness(mock, out, { query: "other" }).opts), (err: unknown) => {
      assert.ok(err instanceof XApiError);
      assert.equal(err.kind, "state");
      assert.match(err.message, /started with query "アニメ lang:ja -is:retweet", not "other"/);
      return true;
    });
  });

  test("a state file that is not a state object is refused with its name", async () => {
    await fetchTweets(harness(mock, out, { max: 10 }).opts);
    for (const content of ["null", "[]", '{"version":2}']) {
      writeFileSync(stateFileFor(out), content);
      await assert.rejects(fetchTweets(harness(mock, out).opts), (err: unknown) => {
        assert.ok(err instanceof XApiError);
        assert.equal(err.kind, "state");
        assert.match(err.message, /\.state\.json: unexpected state file content; delete it to start over/);
        return true;
      });
    }
  });

  test("--since/--until become start_time/end_time; archive spaces requests 1 s apart", async () => {
    const { opts, sleeps } = harness(mock, out, {
      archive: true,
      since: "2024-05-01",
      until: "2024-05-01T12:30:00+09:00",
    });
    await fetchTweets(opts);
    const r = mock.requests[0];
    assert.equal(r?.path, "/2/tweets/search/all");
    assert.equal(r?.params.get("start_time"), "2024-05-01T00:00:00Z");
    assert.equal(r?.params.get("end_time"), "2024-05-01T03:30:00Z");
    assert.equal(r?.params.get("max_results"), "10");
    // The injected clock does not move during requests, so each later request waited a full second.
    assert.deepEqual(sleeps, [1000, 1000]);
    await assert.rejects(
      fetchTweets({ ...opts, out: join(dir, "x.jsonl"), since: "yesterday" }),
      /--since: not an ISO/,
    );
  });

  test("the token is never sent in clear text to a remote host", async () => {
    const { opts } = harness(mock, out, { baseUrl: "http://example.com" });
    await assert.rejects(fetchTweets(opts), /refusing to send the bearer token over plain http/);
    assert.equal(existsSync(out), false);
  });
});

describe("buildSearchQuery", () => {
  test("anime preset with defaults", () => {
    assert.equal(
      buildSearchQuery({ preset: "anime" }),
      "(アニメ OR #アニメ OR 今期アニメ OR 新作アニメ OR アニメ化) lang:ja -is:retweet",
    );
  });
  test("preset extended with --query (ANDed, grouped when it has OR)", () => {
    assert.equal(
      buildSearchQuery({ preset: "anime", query: "呪術廻戦 OR 推しの子", excludeRetweets: false }),
      "(アニメ OR #アニメ OR 今期アニメ OR 新作アニメ OR アニメ化) (呪術廻戦 OR 推しの子) lang:ja",
    );
    assert.equal(
      buildSearchQuery({ preset: "anime", query: "-is:reply" }),
      "(アニメ OR #アニメ OR 今期アニメ OR 新作アニメ OR アニメ化) -is:reply lang:ja -is:retweet",
    );
  });
  test("plain query: OR grouped, existing lang/retweet operators respected", () => {
    assert.equal(buildSearchQuery({ query: "a OR b" }), "(a OR b) lang:ja -is:retweet");
    assert.equal(buildSearchQuery({ query: "cats lang:en is:retweet" }), "cats lang:en is:retweet");
    assert.equal(buildSearchQuery({ query: "cats", lang: "any" }), "cats -is:retweet");
  });
  test("errors", () => {
    assert.throws(() => buildSearchQuery({}), /no search query/);
    assert.throws(
      () => buildSearchQuery({ preset: "manga" }),
      /unknown query preset "manga" \(known: anime\)/,
    );
  });
});
