// The label server's HTTP API: the answers scripts give, the 4xx JSON errors of `serve`, its
// security headers and Host check, and the token.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { llmjpToxicitySchema, selectLabels } from "../../src/data/schema.js";
import { planOrder } from "../../src/label/plan.js";
import { createLabelServer } from "../../src/label/server.js";
import { LabelStore } from "../../src/label/store.js";

const dir = mkdtempSync(join(tmpdir(), "toxlora-label-server-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const SCHEMA = selectLabels(llmjpToxicitySchema(), ["obscene", "violent"]);

async function setup(name: string, texts: string[], overlap = 1) {
  const poolFile = join(dir, `${name}.jsonl`);
  writeFileSync(poolFile, texts.map((t, i) => JSON.stringify({ id: `${name}${i}`, text: t })).join("\n"));
  const store = LabelStore.open(join(dir, `${name}.sqlite`), SCHEMA, { overlap });
  await store.importPool(poolFile);
  store.setPlan(
    planOrder(
      texts.map((_, i) => ({ post: i + 1 })),
      { random: 1, seed: 1 },
    ),
    "t",
  );
  return store;
}

const json = (body: unknown) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

test("API: next → answer → next … → 204; stats; errors are serve's JSON 4xx with its security headers", async () => {
  const store = await setup("api", ["最初の投稿", "二番目の投稿です"]);
  const server = await createLabelServer(store, { port: 0 });
  after(() => server.close());
  const u = server.url;
  const next = await fetch(`${u}/api/next?annotator=ann`);
  assert.equal(next.status, 200);
  assert.equal(next.headers.get("x-content-type-options"), "nosniff");
  const post = (await next.json()) as { id: string; text: string; labels: string[]; overall: string[] };
  assert.deepEqual(post.labels, ["obscene", "violent"]);
  assert.deepEqual(post.overall, ["toxic", "nontoxic", "has_toxic_expression"]);
  const ok = await fetch(
    `${u}/api/answer`,
    json({
      id: post.id,
      annotator: "ann",
      labels: { obscene: true, violent: false },
      overall: "toxic",
      note: "卑猥",
    }),
  );
  assert.equal(ok.status, 200);
  assert.equal(((await ok.json()) as { progress: { answers: number } }).progress.answers, 1);
  const history = (await (await fetch(`${u}/api/history?annotator=ann`)).json()) as Record<string, unknown>;
  assert.deepEqual(
    [history.id, history.labels, history.note],
    [post.id, { obscene: true, violent: false }, "卑猥"],
  );

  const errors: [RequestInit & { path?: string }, number, string][] = [
    [{ path: "/api/next" }, 400, "missing_annotator"],
    [{ path: `/api/next?annotator=${"x".repeat(65)}` }, 400, "invalid_annotator"],
    [{ ...json({ id: post.id }), headers: { "content-type": "text/plain" } }, 415, "unsupported_media_type"],
    [{ ...json({}), body: "{not json" }, 400, "invalid_json"],
    [json([1]), 400, "invalid_body"],
    [
      json({ id: post.id, annotator: "ann", labels: { obscene: "yes", violent: false } }),
      400,
      "invalid_labels",
    ],
    [
      json({ id: post.id, annotator: "ann", labels: { obscene: true, violent: false, x: true } }),
      400,
      "unknown_label",
    ],
    [json({ id: "nope", annotator: "ann", labels: { obscene: true, violent: false } }), 404, "unknown_post"],
    [json({ id: post.id, annotator: "bob", labels: { obscene: true, violent: false } }), 409, "not_served"],
    [json({ id: post.id, annotator: "ann", labels: {}, note: "x".repeat(2001) }), 400, "invalid_note"],
    [{ path: "/api/answer" }, 405, "method_not_allowed"],
    [{ path: "/nope" }, 404, "not_found"],
  ];
  for (const [init, status, code] of errors) {
    const r = await fetch(`${u}${init.path ?? "/api/answer"}`, init);
    assert.equal(r.status, status, `${init.path ?? init.body}`);
    assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, code);
  }

  // A DNS-rebinding page reaches the server under another name (fetch cannot set Host: node:http).
  const evil = await new Promise<{ status: number; body: string }>((res, rej) => {
    const req = request(`${u}/api/stats`, { headers: { host: `evil.example:${server.port}` } }, (r) => {
      let body = "";
      r.on("data", (d) => {
        body += d;
      });
      r.on("end", () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on("error", rej);
    req.end();
  });
  assert.equal(evil.status, 403);
  assert.equal(JSON.parse(evil.body).error.code, "host_not_allowed");

  const second = (await (await fetch(`${u}/api/next?annotator=ann`)).json()) as { id: string };
  await fetch(`${u}/api/answer`, json({ id: second.id, annotator: "ann", skip: true }));
  assert.equal((await fetch(`${u}/api/next?annotator=ann`)).status, 204);
  const stats = (await (await fetch(`${u}/api/stats`)).json()) as { answers: number; annotators: unknown[] };
  assert.equal(stats.answers, 1);
  const [ann] = stats.annotators as {
    annotator: string;
    answers: number;
    skipped: number;
    medianSeconds: number;
  }[];
  assert.deepEqual([ann?.annotator, ann?.answers, ann?.skipped], ["ann", 1, 1]);
  assert.ok((ann?.medianSeconds ?? -1) >= 0);
  const page = await fetch(`${u}/`);
  assert.match(page.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
  assert.match(await page.text(), /ラベル付け/);
});

test("token: every request needs it (Bearer or the cookie /?token= sets); the font does not", async () => {
  const store = await setup("tok", ["a post"]);
  const server = await createLabelServer(store, { port: 0, token: "s3cret" });
  after(() => server.close());
  const u = server.url;
  for (const path of ["/", "/api/next?annotator=a", "/api/stats"]) {
    const r = await fetch(`${u}${path}`);
    assert.equal(r.status, 401, path);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, "unauthorized");
  }
  assert.equal((await fetch(`${u}/api/stats`, { headers: { authorization: "Bearer wrong" } })).status, 401);
  assert.equal((await fetch(`${u}/api/stats`, { headers: { authorization: "Bearer s3cret" } })).status, 200);
  assert.equal((await fetch(`${u}/?token=wrong`, { redirect: "manual" })).status, 401);
  const opened = await fetch(`${u}/?token=s3cret`, { redirect: "manual" });
  assert.equal(opened.status, 303);
  const cookie = (opened.headers.get("set-cookie") ?? "").split(";")[0] as string;
  assert.match(opened.headers.get("set-cookie") ?? "", /HttpOnly; SameSite=Strict/);
  assert.equal((await fetch(`${u}/api/next?annotator=a`, { headers: { cookie } })).status, 200);
  assert.equal((await fetch(`${u}/assets/noto-sans-jp.ttf`, { method: "HEAD" })).status, 200);
});

test("a port in use says which port and suggests --port, as serve does", async () => {
  const store = await setup("busy", ["a"]);
  const taken = createNetServer();
  await new Promise<void>((done) => taken.listen(0, "127.0.0.1", done));
  const port = (taken.address() as { port: number }).port;
  try {
    await assert.rejects(
      createLabelServer(store, { port, host: "127.0.0.1" }),
      new RegExp(
        `^Error: port ${port} is already in use on 127\\.0\\.0\\.1 .*choose another with --port <n>$`,
      ),
    );
  } finally {
    taken.close();
    store.close();
  }
});
