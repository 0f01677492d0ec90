// resolveModel against a local fake of the Hugging Face Hub (node:http on 127.0.0.1). The fake
// answers the requests @huggingface/hub makes: model info by revision, the file tree, and
// resolve URLs (LFS files redirect to a CDN path that honours Range requests, as the Hub does).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { readHfConfig } from "../../src/io/hf-config.js";
import { type DownloadProgress, isModelFile, resolveModel } from "../../src/io/hub.js";
import { openCheckpoint, readSafetensors } from "../../src/io/safetensors.js";
import { fixture } from "../fixture.js";

const REF = fixture("reference");

interface FakeRepo {
  sha: string;
  files: Map<string, Buffer>;
  /** Files stored with Git LFS (served through a redirect, listed with an lfs sha256). */
  lfs: Set<string>;
  /** If set, every request must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** Serve these bytes instead of the real content (to test corrupt downloads). */
  corrupt?: Map<string, Buffer>;
}

const sha1 = (b: Buffer | string) => createHash("sha1").update(b).digest("hex");
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const gitOid = (b: Buffer) => sha1(Buffer.concat([Buffer.from(`blob ${b.length}\0`), b]));

class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  readonly log: string[] = [];
  private server: Server = createServer((req, res) => this.handle(req, res));
  url = "";

  async start(): Promise<void> {
    await new Promise<void>((ok) => this.server.listen(0, "127.0.0.1", ok));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }

  private json(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    res.writeHead(status, { "Content-Type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  }

  /** Serves bytes with Range support, like the Hub's CDN. */
  private bytes(
    req: IncomingMessage,
    res: ServerResponse,
    data: Buffer,
    headers: Record<string, string>,
  ): void {
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    const common = { "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream", ...headers };
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
      res.writeHead(206, {
        ...common,
        "Content-Range": `bytes ${start}-${end}/${data.length}`,
        "Content-Length": String(end - start + 1),
      });
      res.end(req.method === "HEAD" ? undefined : data.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { ...common, "Content-Length": String(data.length) });
    res.end(req.method === "HEAD" ? undefined : data);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", this.url);
    this.log.push(
      `${req.method} ${decodeURIComponent(url.pathname)}${req.headers.authorization ? " [auth]" : ""}`,
    );
    const p = decodeURIComponent(url.pathname);

    let m = /^\/cdn\/([^/]+\/[^/]+)\/([0-9a-f]{64})$/.exec(p);
    if (m) {
      const repo = this.repos.get(m[1]);
      for (const [name, data] of repo?.files ?? []) {
        if (repo?.lfs.has(name) && sha256(data) === m[2]) {
          this.bytes(req, res, repo.corrupt?.get(name) ?? data, { ETag: `"${m[2]}"` });
          return;
        }
      }
      this.json(res, 404, { error: "not found" });
      return;
    }

    m = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)(?:\/.*)?$/.exec(p);
    const r = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(p);
    const id = m?.[1] ?? r?.[1];
    const repo = id ? this.repos.get(id) : undefined;
    if (!id || !repo) {
      this.json(res, 404, { error: "Repository not found" }, { "X-Error-Code": "RepoNotFound" });
      return;
    }
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) {
      this.json(res, 401, { error: "Invalid username or password." });
      return;
    }
    const rev = m?.[3] ?? r?.[2] ?? "";
    if (rev !== "main" && rev !== repo.sha) {
      this.json(res, 404, { error: `Invalid rev id: ${rev}` }, { "X-Error-Code": "RevisionNotFound" });
      return;
    }

    if (m?.[2] === "revision") {
      this.json(res, 200, {
        _id: "0123456789abcdef01234567",
        id,
        sha: repo.sha,
        private: Boolean(repo.token),
        gated: false,
        downloads: 0,
        likes: 0,
        lastModified: "2024-01-01T00:00:00.000Z",
        pipeline_tag: "text-classification",
      });
      return;
    }
    if (m?.[2] === "tree") {
      const recursive = url.searchParams.get("recursive") === "true";
      const entries: unknown[] = [];
      const dirs = new Set<string>();
      for (const [name, data] of repo.files) {
        if (name.includes("/")) {
          dirs.add(name.split("/")[0]);
          if (!recursive) continue;
        }
        entries.push({
          type: "file",
          oid: repo.lfs.has(name) ? sha1(name) : gitOid(data),
          size: data.length,
          path: name,
          ...(repo.lfs.has(name) ? { lfs: { oid: sha256(data), size: data.length, pointerSize: 134 } } : {}),
        });
      }
      for (const d of dirs) entries.push({ type: "directory", oid: sha1(d), size: 0, path: d });
      this.json(res, 200, entries);
      return;
    }
    // resolve/<rev>/<file>
    const name = r?.[3] ?? "";
    const data = repo.files.get(name);
    if (!data) {
      this.json(res, 404, { error: "Entry not found" }, { "X-Error-Code": "EntryNotFound" });
      return;
    }
    const headers = { "X-Repo-Commit": repo.sha };
    if (repo.lfs.has(name)) {
      res.writeHead(302, {
        ...headers,
        Location: `/cdn/${id}/${sha256(data)}`,
        "X-Linked-Etag": `"${sha256(data)}"`,
        "X-Linked-Size": String(data.length),
      });
      res.end();
      return;
    }
    this.bytes(req, res, repo.corrupt?.get(name) ?? data, { ...headers, ETag: `"${gitOid(data)}"` });
    return;
  }
}

const hub = new FakeHub();
let tmp: string;
const savedEnv = { ...process.env };

/** A repository made from the llama reference fixture plus files resolveModel should skip. */
async function llamaRepo(): Promise<FakeRepo> {
  const dir = path.join(REF, "llama");
  const files = new Map<string, Buffer>([
    ["config.json", await readFile(path.join(dir, "config.json"))],
    ["model.safetensors", await readFile(path.join(dir, "model.safetensors"))],
    ["head.safetensors", await readFile(path.join(dir, "head.safetensors"))],
    ["tokenizer.json", Buffer.from('{"version":"1.0","model":{"type":"Unigram","vocab":[["<unk>",0]]}}')],
    ["tokenizer_config.json", Buffer.from('{"eos_token":"</s>"}')],
    ["tokenizer.model", Buffer.from("sentencepiece model bytes")],
    ["README.md", Buffer.from("# tiny llama\n")],
    ["training_args.bin", Buffer.from("pickle")],
    ["onnx/model.onnx", Buffer.from("onnx bytes")],
  ]);
  return { sha: sha1("llama-commit-1"), files, lfs: new Set(["model.safetensors", "head.safetensors"]) };
}

before(async () => {
  await hub.start();
  tmp = await mkdtemp(path.join(tmpdir(), "toxlora-hub-"));
  hub.repos.set("org/tiny-llama", await llamaRepo());
});
after(async () => {
  await hub.stop();
  await rm(tmp, { recursive: true, force: true });
});
afterEach(() => {
  for (const k of [
    "HF_ENDPOINT",
    "HF_TOKEN",
    "HF_HUB_OFFLINE",
    "HF_HUB_CACHE",
    "HF_HOME",
    "HUGGING_FACE_HUB_TOKEN",
  ]) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});

describe("resolveModel", () => {
  test("local folders are used as they are; bad paths are named", async () => {
    const n = hub.log.length;
    assert.equal(await resolveModel(path.join(REF, "bert")), path.join(REF, "bert"));
    await assert.rejects(
      resolveModel(path.join(REF, "bert", "config.json")),
      /is a file; pass the model folder/,
    );
    await assert.rejects(resolveModel("./no/such/dir"), /no such folder, and not a Hugging Face model id/);
    assert.equal(hub.log.length, n, "no Hub requests for local folders");
  });

  test("downloads only the needed files into the standard cache layout", async () => {
    const cacheDir = path.join(tmp, "cache1");
    const progress: DownloadProgress[] = [];
    hub.log.length = 0;
    const dir = await resolveModel("org/tiny-llama", {
      cacheDir,
      endpoint: hub.url,
      onProgress: (p) => progress.push(p),
    });
    const repo = hub.repos.get("org/tiny-llama") as FakeRepo;
    const storage = path.join(cacheDir, "models--org--tiny-llama");
    assert.equal(dir, path.join(storage, "snapshots", repo.sha));
    assert.deepEqual((await readdir(dir)).sort(), [
      "config.json",
      "head.safetensors",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer.model",
      "tokenizer_config.json",
    ]);
    assert.equal((await readFile(path.join(storage, "refs", "main"), "utf8")).trim(), repo.sha);
    // Snapshot entries are relative symlinks to blobs named by sha256 (LFS) or git oid.
    const model = repo.files.get("model.safetensors") as Buffer;
    assert.ok((await lstat(path.join(dir, "model.safetensors"))).isSymbolicLink());
    assert.equal(await readlink(path.join(dir, "model.safetensors")), `../../blobs/${sha256(model)}`);
    assert.equal(
      await readlink(path.join(dir, "config.json")),
      `../../blobs/${gitOid(repo.files.get("config.json") as Buffer)}`,
    );
    assert.deepEqual(await readFile(path.join(dir, "model.safetensors")), model);
    assert.deepEqual(
      (await readdir(path.join(storage, "blobs"))).filter((f) => f.endsWith(".incomplete")),
      [],
    );
    // The folder loads like the fixture folder.
    assert.equal((await readHfConfig(dir)).family, "llama");
    const ck = await openCheckpoint(dir);
    const ref = await readSafetensors(path.join(REF, "llama", "model.safetensors"));
    assert.deepEqual(ck.keys(), [...ref.keys()]);
    assert.deepEqual(await ck.getF32("model.norm.weight"), ref.get("model.norm.weight"));
    await ck.close();
    // Progress ends at the full size of each file.
    const last = progress.filter((p) => p.file === "model.safetensors").at(-1);
    assert.deepEqual(last, {
      repo: "org/tiny-llama",
      file: "model.safetensors",
      loaded: model.length,
      total: model.length,
    });
    // The requests @huggingface/hub made; nothing for README.md, training_args.bin or onnx/.
    assert.ok(hub.log.includes("GET /api/models/org/tiny-llama/revision/main"));
    assert.ok(hub.log.includes(`GET /api/models/org/tiny-llama/tree/${repo.sha}`));
    assert.ok(hub.log.includes(`GET /org/tiny-llama/resolve/${repo.sha}/model.safetensors`));
    assert.ok(hub.log.includes(`GET /cdn/org/tiny-llama/${sha256(model)}`));
    assert.ok(!hub.log.some((l) => /README|training_args|onnx/.test(l)), hub.log.join("\n"));

    // A second call finds everything cached: only the revision and tree lookups.
    hub.log.length = 0;
    assert.equal(await resolveModel("org/tiny-llama", { cacheDir, endpoint: hub.url }), dir);
    assert.deepEqual(hub.log, [
      "GET /api/models/org/tiny-llama/revision/main",
      `GET /api/models/org/tiny-llama/tree/${repo.sha}`,
    ]);

    // Offline (option, or HF_HUB_OFFLINE=1, by branch or by commit): no requests at all.
    hub.log.length = 0;
    assert.equal(await resolveModel("org/tiny-llama", { cacheDir, endpoint: hub.url, offline: true }), dir);
    process.env.HF_HUB_OFFLINE = "1";
    process.env.HF_HUB_CACHE = cacheDir;
    process.env.HF_ENDPOINT = hub.url;
    assert.equal(await resolveModel("org/tiny-llama"), dir);
    assert.equal(await resolveModel("org/tiny-llama", { revision: repo.sha }), dir);
    assert.deepEqual(hub.log, []);
    await assert.rejects(resolveModel("org/tiny-llama", { revision: "v2" }), (e: Error) => {
      assert.match(e.message, /org\/tiny-llama@v2: offline mode .* not in the cache/);
      assert.match(e.message, /no cached revision "v2"/);
      return true;
    });
    await assert.rejects(resolveModel("org/other"), /org\/other@main: offline mode/);
  });

  test("HF_ENDPOINT, HF_HOME and HF_TOKEN are respected (private repo)", async () => {
    const repo = await llamaRepo();
    repo.token = "hf_testtoken123";
    repo.sha = sha1("private-commit");
    hub.repos.set("org/private", repo);
    process.env.HF_ENDPOINT = hub.url;
    process.env.HF_HOME = path.join(tmp, "hfhome");
    delete process.env.HF_HUB_CACHE;
    delete process.env.HF_TOKEN;
    await assert.rejects(
      resolveModel("org/private", { onProgress: () => {} }),
      /org\/private: access denied .*HTTP 401.*private or gated.*HF_TOKEN/,
    );
    process.env.HF_TOKEN = "hf_testtoken123";
    hub.log.length = 0;
    const dir = await resolveModel("org/private", { onProgress: () => {} });
    assert.equal(dir, path.join(tmp, "hfhome", "hub", "models--org--private", "snapshots", repo.sha));
    assert.ok(
      hub.log.length > 0 &&
        hub.log.filter((l) => !l.startsWith("GET /cdn/")).every((l) => l.endsWith("[auth]")),
    );
  });

  test("unknown repos and revisions give clear errors", async () => {
    const opts = { cacheDir: path.join(tmp, "cache2"), endpoint: hub.url };
    await assert.rejects(
      resolveModel("org/missing", opts),
      /org\/missing: not a local folder, and model or revision "main" not found on http:\/\/127\.0\.0\.1:\d+ \(HTTP 404\)/,
    );
    await assert.rejects(
      resolveModel("org/tiny-llama", { ...opts, revision: "nope" }),
      /revision "nope" not found/,
    );
  });

  test("a corrupt download is rejected and leaves nothing in the cache", async () => {
    const repo = await llamaRepo();
    repo.sha = sha1("corrupt-commit");
    const good = repo.files.get("model.safetensors") as Buffer;
    const bad = Buffer.from(good);
    bad[bad.length - 1] ^= 0xff;
    repo.corrupt = new Map([["model.safetensors", bad]]);
    hub.repos.set("org/corrupt", repo);
    const cacheDir = path.join(tmp, "cache3");
    await assert.rejects(
      resolveModel("org/corrupt", { cacheDir, endpoint: hub.url, onProgress: () => {} }),
      /org\/corrupt: download of model\.safetensors is corrupt: got \d+ bytes with hash [0-9a-f]{64}, the Hub lists/,
    );
    const blobs = await readdir(path.join(cacheDir, "models--org--corrupt", "blobs"));
    assert.ok(!blobs.includes(sha256(good)));
    assert.deepEqual(
      blobs.filter((b) => b.endsWith(".incomplete")),
      [],
    );
  });

  test("sharded weights are all fetched; pickle-only repos are refused", async () => {
    const { writeSafetensors } = await import("../../src/io/safetensors.js");
    const shardDir = path.join(tmp, "shards");
    await writeSafetensors(path.join(shardDir, "a.safetensors"), {
      x: { data: Float32Array.of(1, 2), shape: [2] },
    });
    await writeSafetensors(path.join(shardDir, "b.safetensors"), {
      y: { data: Float32Array.of(3), shape: [1] },
    });
    const files = new Map<string, Buffer>([
      ["config.json", Buffer.from(JSON.stringify({ model_type: "llama" }))],
      ["model-00001-of-00002.safetensors", await readFile(path.join(shardDir, "a.safetensors"))],
      ["model-00002-of-00002.safetensors", await readFile(path.join(shardDir, "b.safetensors"))],
      [
        "model.safetensors.index.json",
        Buffer.from(
          JSON.stringify({
            weight_map: { x: "model-00001-of-00002.safetensors", y: "model-00002-of-00002.safetensors" },
          }),
        ),
      ],
    ]);
    hub.repos.set("org/sharded", {
      sha: sha1("sharded"),
      files,
      lfs: new Set(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]),
    });
    const cacheDir = path.join(tmp, "cache4");
    const dir = await resolveModel("org/sharded", { cacheDir, endpoint: hub.url, onProgress: () => {} });
    const ck = await openCheckpoint(dir);
    assert.deepEqual(ck.keys(), ["x", "y"]);
    assert.deepEqual([...(await ck.getF32("y")).data], [3]);
    await ck.close();
    // Offline mode notices a missing shard.
    await rm(path.join(dir, "model-00002-of-00002.safetensors"));
    await assert.rejects(
      resolveModel("org/sharded", { cacheDir, offline: true }),
      /lacks shard model-00002-of-00002\.safetensors/,
    );

    hub.repos.set("org/pickle", {
      sha: sha1("pickle"),
      files: new Map([
        ["config.json", Buffer.from("{}")],
        ["pytorch_model.bin", Buffer.from("x")],
      ]),
      lfs: new Set(),
    });
    await assert.rejects(
      resolveModel("org/pickle", { cacheDir, endpoint: hub.url }),
      /org\/pickle: the repository has no safetensors weights, only PyTorch pickles \(pytorch_model\.bin\)/,
    );
  });

  test("an unreachable Hub falls back to a complete cached snapshot, else explains", async () => {
    const cacheDir = path.join(tmp, "cache5");
    const dir = await resolveModel("org/tiny-llama", { cacheDir, endpoint: hub.url, onProgress: () => {} });
    // A port nothing listens on: take one from a server we close again.
    const probe = createServer();
    await new Promise<void>((ok) => probe.listen(0, "127.0.0.1", ok));
    const deadUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise<void>((ok) => probe.close(() => ok()));
    const origWrite = process.stderr.write.bind(process.stderr);
    const warnings: string[] = [];
    process.stderr.write = ((chunk: string) => {
      warnings.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      assert.equal(await resolveModel("org/tiny-llama", { cacheDir, endpoint: deadUrl }), dir);
    } finally {
      process.stderr.write = origWrite;
    }
    assert.match(
      warnings.join(""),
      /warning: cannot reach http:\/\/127\.0\.0\.1:\d+ .*using the cached org\/tiny-llama/,
    );
    await assert.rejects(
      resolveModel("org/never-cached", { cacheDir, endpoint: deadUrl }),
      /org\/never-cached: cannot reach .* and the model is not cached .*HF_HUB_OFFLINE=1/,
    );
  });
});

test("isModelFile: the default download selection", () => {
  const yes = [
    "config.json",
    "model.safetensors",
    "model-00001-of-00004.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "spiece.model",
    "vocab.txt",
    "adapter_config.json",
    "adapter_model.safetensors",
  ];
  const no = [
    "README.md",
    "pytorch_model.bin",
    "onnx/model.onnx",
    "original/consolidated.safetensors",
    ".gitattributes",
  ];
  for (const f of yes) assert.equal(isModelFile(f), true, f);
  for (const f of no) assert.equal(isModelFile(f), false, f);
});
