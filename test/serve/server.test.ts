// The HTTP API of `toxlora serve` against a keyword classifier: answers, every error case, limits,
// micro-batching, and that nothing a client sends brings the server down.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { MicroBatcher } from "../../src/serve/batcher.js";
import { createServer, type RunningServer } from "../../src/serve/server.js";
import { KeywordClassifier } from "./keyword-classifier.js";

interface Reply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function call(base: string, path: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(base + path, init);
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text);
  } catch {
    body = { raw: text };
  }
  return { status: res.status, headers: res.headers, body };
}

const post = (base: string, body: string, path = "/v1/classify") =>
  call(base, path, { method: "POST", headers: { "content-type": "application/json" }, body });

function assertError(r: Reply, status: number, code: string, message?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.headers.get("content-type"), "application/json; charset=utf-8");
  const err = r.body.error as { code: string; message: string };
  assert.equal(err.code, code);
  assert.equal(typeof err.message, "string");
  if (message) assert.match(err.message, message);
}

/** Sends raw bytes on a socket and returns everything the server answers. */
function rawRequest(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(data));
    let out = "";
    socket.on("data", (d) => {
      out += d.toString();
    });
    socket.on("end", () => resolve(out));
    socket.on("error", reject);
  });
}

let dir: string;
let classifier: KeywordClassifier;
let server: RunningServer;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-serve-"));
  classifier = new KeywordClassifier();
  server = await createServer(classifier, {
    port: 0,
    maxBatch: 4,
    maxTextLength: 50,
    maxBodyBytes: 2000,
    batchWaitMs: 2,
  });
});
after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe("serve: API", () => {
  it("binds to 127.0.0.1 by default", () => {
    assert.equal(server.host, "127.0.0.1");
    assert.equal((server.server.address() as net.AddressInfo).address, "127.0.0.1");
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("GET /healthz and /v1/labels", async () => {
    const h = await call(server.url, "/healthz");
    assert.equal(h.status, 200);
    assert.equal(h.body.status, "ok");
    const l = await call(server.url, "/v1/labels");
    assert.deepEqual(l.body, { labels: classifier.labels, thresholds: classifier.thresholds });
  });

  it("POST /v1/classify returns probabilities and decisions per label, in input order", async () => {
    const r = await post(
      server.url,
      JSON.stringify({ texts: ["あの会社はエロい広告ばかり", "今日はいい天気", ""] }),
    );
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.labels, classifier.labels);
    assert.deepEqual(r.body.thresholds, classifier.thresholds);
    const results = r.body.results as { probs: Record<string, number>; decisions: Record<string, boolean> }[];
    assert.equal(results.length, 3);
    assert.deepEqual(results[0]?.decisions, {
      obscene: true,
      discriminatory: false,
      violent: false,
      corporate: true,
    });
    assert.equal(results[0]?.probs.obscene, 0.85);
    assert.deepEqual(Object.values(results[1]?.decisions ?? {}), [false, false, false, false]);
    // An empty list is a valid (empty) request.
    const empty = await post(server.url, JSON.stringify({ texts: [] }));
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body.results, []);
  });

  it("answers every bad request with a 4xx JSON error", async () => {
    const u = server.url;
    assertError(await post(u, "{not json"), 400, "invalid_json", /not valid JSON/);
    assertError(await post(u, ""), 400, "invalid_json");
    assertError(await post(u, '["a"]'), 400, "invalid_body");
    assertError(await post(u, "null"), 400, "invalid_body");
    assertError(await post(u, JSON.stringify({ text: "a" })), 400, "missing_texts", /"texts" is missing/);
    assertError(await post(u, JSON.stringify({ texts: "a" })), 400, "invalid_texts");
    assertError(
      await post(u, JSON.stringify({ texts: ["a", 3] })),
      400,
      "invalid_text",
      /texts\[1\] must be a string, got number/,
    );
    assertError(await post(u, JSON.stringify({ texts: ["a", null] })), 400, "invalid_text", /got null/);
    assertError(
      await post(u, JSON.stringify({ texts: ["a", "b", "c", "d", "e"] })),
      413,
      "too_many_texts",
      /at most 4/,
    );
    // 51 characters (the limit is 50), counted as characters, not bytes: 50 kanji pass.
    assertError(
      await post(u, JSON.stringify({ texts: ["ok", "あ".repeat(51)] })),
      413,
      "text_too_long",
      /texts\[1\] has 51 characters/,
    );
    assert.equal((await post(u, JSON.stringify({ texts: ["漢".repeat(50)] }))).status, 200);
    assertError(
      await post(u, JSON.stringify({ texts: ["x".repeat(3000)] })),
      413,
      "body_too_large",
      /2000 bytes/,
    );
    const get = await call(u, "/v1/classify");
    assertError(get, 405, "method_not_allowed");
    assert.equal(get.headers.get("allow"), "POST");
    const postHealth = await post(u, "{}", "/healthz");
    assertError(postHealth, 405, "method_not_allowed");
    assert.equal(postHealth.headers.get("allow"), "GET, HEAD");
    assertError(await call(u, "/v2/classify"), 404, "not_found");
    assertError(await call(u, "/report"), 404, "no_report");
    // The server is still fine.
    assert.equal((await call(u, "/healthz")).status, 200);
  });

  it("refuses a chunked body past the limit without reading it all", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const headers = { "content-type": "application/json" };
      const req = http.request(`${server.url}/v1/classify`, { method: "POST", headers }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.write('{"texts": ["');
      const chunk = "x".repeat(1000);
      let sent = 0;
      // Keep sending until the server answers (it must not wait for the end of the body).
      const timer = setInterval(() => {
        if (sent++ < 50) req.write(chunk);
        else {
          clearInterval(timer);
          req.end('"]}');
        }
      }, 1);
      req.on("response", () => clearInterval(timer));
    });
    assert.equal(status, 413);
    assert.equal((await call(server.url, "/healthz")).status, 200);
  });

  it("answers malformed HTTP with 400", async () => {
    const answer = await rawRequest(server.port, "THIS IS NOT HTTP\r\n\r\n");
    assert.match(answer, /^HTTP\/1\.1 400/);
    assert.match(answer, /"code":"bad_request"/);
  });

  it("turns a classifier failure into a 500 JSON error that leaks nothing, logs it, and keeps serving", async () => {
    const logged: string[] = [];
    const c = new KeywordClassifier();
    const s = await createServer(c, { port: 0, logError: (l) => logged.push(l) });
    c.failWith = new Error("onnxruntime exploded in /onnxruntime_src/core/session.cc");
    try {
      const r = await post(s.url, JSON.stringify({ texts: ["a"] }));
      assertError(r, 500, "internal_error", /^classification failed; the server log has the details$/);
      assert.doesNotMatch(JSON.stringify(r.body), /onnxruntime|\.cc/);
      assert.match(logged.join("\n"), /classification failed: onnxruntime exploded/);
      c.failWith = undefined;
      assert.equal((await post(s.url, JSON.stringify({ texts: ["a"] }))).status, 200);
    } finally {
      await s.close();
    }
  });

  it("names a failure outside the classifier as an internal error, without its message", async () => {
    // A report path that cannot be read as a file (a folder).
    const logged: string[] = [];
    const s = await createServer(new KeywordClassifier(), {
      port: 0,
      reportPath: dir,
      logError: (l) => logged.push(l),
    });
    try {
      const r = await call(s.url, "/report");
      assertError(r, 500, "internal_error", /^internal error; the server log has the details$/);
      assert.doesNotMatch(JSON.stringify(r.body), /EISDIR|\//);
      assert.match(logged.join("\n"), /internal error on GET \/report: .*EISDIR/);
      assert.equal((await call(s.url, "/healthz")).status, 200);
    } finally {
      await s.close();
    }
  });

  it("batches concurrent requests into one predict call", async () => {
    // A long wait, so that only a full batch (4 texts) triggers predict: no timing involved.
    const c = new KeywordClassifier();
    const s = await createServer(c, { port: 0, maxBatch: 4, batchWaitMs: 60_000 });
    try {
      const texts = ["エロ", "差別", "殴る", "会社"];
      const replies = await Promise.all(texts.map((t) => post(s.url, JSON.stringify({ texts: [t] }))));
      assert.equal(c.calls.length, 1);
      assert.deepEqual([...(c.calls[0] as string[])].sort(), [...texts].sort());
      // Each request still gets its own text's result.
      replies.forEach((r, i) => {
        const decisions = (r.body.results as { decisions: Record<string, boolean> }[])[0]?.decisions ?? {};
        assert.deepEqual(
          Object.keys(decisions).filter((k) => decisions[k]),
          [c.labels[i]],
        );
      });
    } finally {
      await s.close();
    }
  });

  it("serves the page, the report and its images, and the Japanese font", async () => {
    const runDir = join(dir, "run");
    await mkdir(join(runDir, "imgs"), { recursive: true });
    const reportPath = join(runDir, "report.html");
    await writeFile(reportPath, "<!doctype html><title>report</title>");
    await writeFile(join(runDir, "imgs", "pr-obscene.png"), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    await writeFile(join(dir, "secret.png"), "secret");
    const c = new KeywordClassifier();
    const s = await createServer(c, { port: 0, reportPath, title: "run-<1>" });
    try {
      const page = await fetch(`${s.url}/`);
      assert.equal(page.status, 200);
      assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
      const html = await page.text();
      for (const label of c.labels) assert.ok(html.includes(`data-label="${label}"`), label);
      assert.ok(html.includes('href="/report"'));
      assert.ok(html.includes("run-&lt;1&gt;"), "title escaped");
      assert.ok(html.includes("わいせつ"));
      const report = await fetch(`${s.url}/report`);
      assert.equal(report.status, 200);
      assert.equal(await report.text(), "<!doctype html><title>report</title>");
      const img = await fetch(`${s.url}/imgs/pr-obscene.png`);
      assert.equal(img.status, 200);
      assert.equal(img.headers.get("content-type"), "image/png");
      // Nothing outside imgs/ is reachable (paths sent verbatim: fetch would normalise "..").
      for (const path of [
        "/imgs/..%2F..%2Fsecret.png",
        "/imgs/../secret.png",
        "/imgs/%2e%2e%2fsecret.png",
        "/imgs/report.html",
        "/imgs/%E0%A4%A",
      ]) {
        const status = await new Promise<number>((resolve, reject) => {
          http
            .get({ host: "127.0.0.1", port: s.port, path }, (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            })
            .on("error", reject);
        });
        assert.ok(status === 404 || status === 400, `${path}: ${status}`);
      }
      const font = await fetch(`${s.url}/assets/noto-sans-jp.ttf`, { method: "HEAD" });
      assert.equal(font.status, 200);
      assert.equal(font.headers.get("content-type"), "font/ttf");
      assert.ok(Number(font.headers.get("content-length")) > 1_000_000);
    } finally {
      await s.close();
    }
  });
});

describe("serve: micro-batcher", () => {
  it("sends a batch when it is full, or after the wait", async () => {
    const c = new KeywordClassifier();
    const b = new MicroBatcher((t) => c.predict(t), { maxBatch: 3, waitMs: 5 });
    const [r1, r2] = await Promise.all([b.submit(["a", "b"]), b.submit(["エロ"])]);
    assert.equal(r1?.length, 2);
    assert.equal(r2?.[0]?.decisions[0], true);
    assert.deepEqual(c.calls, [["a", "b", "エロ"]]);
    // One lone text goes out after the wait.
    await b.submit(["c"]);
    assert.deepEqual(c.calls[1], ["c"]);
    await assert.rejects(b.submit(["1", "2", "3", "4"]), /exceed the batch limit of 3/);
  });

  it("gathers requests that arrive during a predict call into the next batch, never splitting a request", async () => {
    const c = new KeywordClassifier();
    let release = () => {};
    c.gate = new Promise((r) => {
      release = r;
    });
    const b = new MicroBatcher((t) => c.predict(t), { maxBatch: 4, waitMs: 0 });
    const first = b.submit(["first"]);
    await new Promise((r) => setTimeout(r, 5)); // the first batch is now in flight
    assert.equal(c.calls.length, 1);
    const later = [b.submit(["x1", "x2"]), b.submit(["y1"]), b.submit(["z1", "z2"])];
    c.gate = undefined;
    release();
    await Promise.all([first, ...later]);
    // x (2) + y (1) fill 3 of 4; z (2) would not fit, so it goes in the following batch.
    assert.deepEqual(c.calls, [["first"], ["x1", "x2", "y1"], ["z1", "z2"]]);
    assert.equal(b.stats.requests, 4);
    assert.equal(b.stats.largestBatch, 3);
  });

  it("rejects every request of a failed batch", async () => {
    const c = new KeywordClassifier();
    c.failWith = new Error("boom");
    const b = new MicroBatcher((t) => c.predict(t), { maxBatch: 4, waitMs: 1 });
    const results = await Promise.allSettled([b.submit(["a"]), b.submit(["b"])]);
    assert.deepEqual(
      results.map((r) => r.status),
      ["rejected", "rejected"],
    );
  });
});
