// serve on the open web and under load: one bad text fails only its own request, a full queue
// answers 503 + Retry-After, security headers on every response, Host and Content-Type checks, and
// no absolute local paths in /report.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createServer, hostChecker, type RunningServer } from "../../src/serve/server.js";
import { KeywordClassifier } from "./keyword-classifier.js";

/** A raw request (fetch cannot set Host), answered with status, headers and body text. */
function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? "GET", headers: opts.headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

const JSON_HEADERS = { "content-type": "application/json" };
const classify = (url: string, texts: string[]) =>
  request(`${url}/v1/classify`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ texts }) });

/** Holds the classifier's next calls until `release()`. */
function hold(c: KeywordClassifier): () => void {
  let release = () => {};
  c.gate = new Promise<void>((r) => {
    release = () => {
      c.gate = undefined;
      r();
    };
  });
  return release;
}

/** Resolves once the classifier has been called `n` times. */
async function calls(c: KeywordClassifier, n: number): Promise<void> {
  while (c.calls.length < n) await new Promise((r) => setImmediate(r));
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-serve-hardening-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("serve: failures stay with their request", () => {
  it("a poisonous text batched with others fails only its own request, with no internal message", async () => {
    const c = new KeywordClassifier();
    c.poison = "毒";
    const logged: string[] = [];
    const s = await createServer(c, {
      port: 0,
      maxBatch: 8,
      batchWaitMs: 1,
      logError: (l) => logged.push(l),
    });
    try {
      const release = hold(c);
      const first = classify(s.url, ["先頭"]); // holds the classifier while the others gather
      await calls(c, 1);
      const others = [classify(s.url, ["会社"]), classify(s.url, ["毒"]), classify(s.url, ["殺す", "普通"])];
      while (s.batcher.pendingTexts < 5) await new Promise((r) => setImmediate(r));
      release();
      const [a, poisoned, b] = await Promise.all(others);
      assert.equal((await first).status, 200);
      assert.deepEqual(c.calls[1], ["会社", "毒", "殺す", "普通"], "the three requests shared one call");
      assert.equal(a?.status, 200);
      assert.equal(b?.status, 200);
      assert.equal(JSON.parse(b?.body ?? "{}").results.length, 2);
      assert.equal(poisoned?.status, 500);
      assert.doesNotMatch(poisoned?.body ?? "", /onnxruntime|gather|\.cc/i);
      assert.match(logged.join("\n"), /onnxruntime_src/);
    } finally {
      await s.close();
    }
  });
});

describe("serve: bounded queue", () => {
  it("beyond --max-queue texts: 503 with Retry-After; the queue drains and serves again", async () => {
    const c = new KeywordClassifier();
    const s = await createServer(c, { port: 0, maxBatch: 2, maxQueue: 4, batchWaitMs: 1 });
    try {
      const release = hold(c);
      const admitted = [classify(s.url, ["a", "b"])];
      await calls(c, 1);
      admitted.push(classify(s.url, ["c", "d"]));
      while (s.batcher.pendingTexts < 4) await new Promise((r) => setImmediate(r));
      const refused = await classify(s.url, ["e"]);
      assert.equal(refused.status, 503);
      assert.equal(refused.headers["retry-after"], "1");
      assert.equal(JSON.parse(refused.body).error.code, "busy");
      release();
      for (const r of await Promise.all(admitted)) assert.equal(r.status, 200);
      assert.equal(s.batcher.pendingTexts, 0);
      assert.equal((await classify(s.url, ["e"])).status, 200);
    } finally {
      await s.close();
    }
  });

  it("beyond --max-queue-bytes of request bodies: 503 before reading the body", async () => {
    const c = new KeywordClassifier();
    const s = await createServer(c, { port: 0, maxBatch: 4, maxQueueBytes: 3000, maxTextLength: 5000 });
    try {
      const release = hold(c);
      const big = "あ".repeat(600); // 1,800 bytes in UTF-8
      const first = classify(s.url, [big]);
      await calls(c, 1);
      const refused = await classify(s.url, [big]);
      assert.equal(refused.status, 503);
      assert.equal(refused.headers["retry-after"], "1");
      release();
      assert.equal((await first).status, 200);
      assert.equal((await classify(s.url, [big])).status, 200, "the bytes were given back");
    } finally {
      await s.close();
    }
  });
});

describe("serve: on the open web", () => {
  let s: RunningServer;
  before(async () => {
    const run = join(dir, "run");
    await mkdir(join(run, "imgs"), { recursive: true });
    const modelDir = join(dir, "secret-home", "models", "bert");
    const data = join(dir, "secret-home", "data", "train.jsonl");
    await writeFile(join(run, "config.json"), JSON.stringify({ modelDir, train: { data, out: run } }));
    await writeFile(join(run, "manifest.json"), JSON.stringify({ files: [{ path: data }] }));
    await writeFile(
      join(run, "report.html"),
      `<html><body><td>${run}</td><pre>${JSON.stringify({ modelDir, data }, null, 2)}</pre><img src="imgs/a.png"></body></html>`,
    );
    await writeFile(join(run, "imgs", "a.png"), "png");
    s = await createServer(new KeywordClassifier(), {
      port: 0,
      reportPath: join(run, "report.html"),
      runDir: run,
      allowedHosts: ["toxlora.internal"],
    });
  });
  after(async () => {
    await s.close();
  });

  it("every response has nosniff, no-referrer, no framing and a CSP", async () => {
    const answers = [
      await request(`${s.url}/`),
      await request(`${s.url}/healthz`),
      await request(`${s.url}/report`),
      await request(`${s.url}/imgs/a.png`),
      await request(`${s.url}/nope`),
      await classify(s.url, ["a"]),
    ];
    for (const r of answers) {
      assert.equal(r.headers["x-content-type-options"], "nosniff");
      assert.equal(r.headers["referrer-policy"], "no-referrer");
      assert.equal(r.headers["x-frame-options"], "DENY");
      assert.match(String(r.headers["content-security-policy"]), /frame-ancestors 'none'/);
    }
    assert.match(
      String(answers[2]?.headers["content-security-policy"]),
      /default-src 'none'.*img-src 'self'/,
    );
  });

  it("a Host that is not this server (DNS rebinding) gets 403; localhost and --allowed-host pass", async () => {
    const port = new URL(s.url).port;
    const evil = await request(`${s.url}/v1/labels`, { headers: { host: `attacker.example:${port}` } });
    assert.equal(evil.status, 403);
    assert.equal(JSON.parse(evil.body).error.code, "host_not_allowed");
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, "toxlora.internal"]) {
      assert.equal((await request(`${s.url}/v1/labels`, { headers: { host } })).status, 200, host);
    }
    const wildcard = hostChecker("0.0.0.0", []);
    assert.equal(wildcard("192.168.1.20:8080"), true);
    assert.equal(wildcard("[fe80::1]:8080"), true);
    assert.equal(wildcard("rebind.attacker.example"), false);
    assert.equal(hostChecker("127.0.0.1", [])("192.168.1.20"), false);
    assert.equal(hostChecker("127.0.0.1", [])(undefined), false);
  });

  it("a POST must say Content-Type: application/json (a cross-site form cannot)", async () => {
    const body = JSON.stringify({ texts: ["a"] });
    for (const type of [
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
    ]) {
      const r = await request(`${s.url}/v1/classify`, {
        method: "POST",
        headers: { "content-type": type },
        body,
      });
      assert.equal(r.status, 415, type);
      assert.equal(JSON.parse(r.body).error.code, "unsupported_media_type");
    }
    const ok = await request(`${s.url}/v1/classify`, {
      method: "POST",
      headers: { "content-type": "Application/JSON; charset=utf-8" },
      body,
    });
    assert.equal(ok.status, 200);
  });

  it("/report shows paths relative to the run; --show-paths shows them as they are", async () => {
    const r = await request(`${s.url}/report`);
    assert.equal(r.status, 200);
    assert.ok(!r.body.includes(dir), "no absolute path left");
    assert.match(r.body, /\.\.\/secret-home\/models\/bert/);
    assert.match(r.body, /<td>\.<\/td>/);
    const shown = await createServer(new KeywordClassifier(), {
      port: 0,
      reportPath: join(dir, "run", "report.html"),
      runDir: join(dir, "run"),
      showPaths: true,
    });
    try {
      assert.match((await request(`${shown.url}/report`)).body, new RegExp(`${dir}/secret-home/models`));
    } finally {
      await shown.close();
    }
  });
});
