// `npm run bench:serve`: load check of `toxlora serve`. N concurrent clients send a fixed number of
// one-text requests (real short Japanese posts from the bundled demo data) over loopback to the
// server, started as its own process with the CLI (`toxlora serve --run <dir>`), and we record
// requests per second, p50/p90/p99 latency, errors, and how requests were batched.
//
// Classifiers: real runs made by the trainer, trained here in seconds on the demo data:
// - "tiny": 1-layer BERT-shaped model, hidden 16 (the cost is the server's, not the model's);
// - "bert-2x768": 2 layers, hidden 768, 12 heads, FFN 3072 (model-bound), with the server's
//   micro-batching on (--max-batch 32) and off (--max-batch 1).
// Or set BENCH_RUN=<run dir> to load an existing run instead (one config, micro-batching on).
// Settings: BENCH_CLIENTS (default 16), BENCH_REQUESTS (default 1000 for tiny, 400 for bert).
// Results: one JSON line on stdout and bench/results/serve.json.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildCharTokenizer } from "../src/io/tokenizer-build.js";
import { writeRandomCheckpoint } from "../src/models/random-checkpoint.js";
import { train } from "../src/train/trainer.js";

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DEMO = join(ROOT, "assets/demo/toxicity-ja.jsonl");

const demoTexts = readFileSync(DEMO, "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => String((JSON.parse(l) as { text: string }).text));

/** Trains a run of the given size on the demo data and returns its directory. */
async function trainRun(dir: string, size: { hidden: number; layers: number; heads: number; ffn: number }) {
  const model = join(dir, "model");
  const tok = await buildCharTokenizer(demoTexts, { outDir: model, style: "bert" });
  await writeRandomCheckpoint(model, {
    arch: "bert",
    vocabSize: tok.vocabSize,
    hidden: size.hidden,
    layers: size.layers,
    heads: size.heads,
    intermediate: size.ffn,
    maxPositions: 512,
    dropout: 0,
    seed: 1,
  });
  const r = await train(
    {
      model,
      data: DEMO,
      preset: "llmjp-toxicity",
      epochs: 1,
      batchSize: 16,
      maxLength: 128,
      loraR: 8,
      loraAlpha: 16,
      out: join(dir, "run"),
    },
    { progress: "quiet" },
  );
  return r.runDir;
}

interface Server {
  url: string;
  child: ChildProcess;
}

/** Starts `toxlora serve` as a child process and waits for the URL it prints. */
function startServer(run: string, maxBatch: number): Promise<Server> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(ROOT, "src/cli/main.ts"),
      "serve",
      ...["--run", run, "--port", "0", "--quiet", "--max-batch", String(maxBatch)],
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d) => {
      out += d;
      const line = out.split("\n")[0] ?? "";
      if (out.includes("\n") && line.startsWith("http")) resolve({ url: line.trim(), child });
    });
    child.on("exit", (code) => reject(new Error(`serve exited with ${code}:\n${stderr}`)));
  });
}

async function stopServer(s: Server): Promise<void> {
  const exited = new Promise((r) => s.child.once("exit", r));
  s.child.kill("SIGTERM");
  await exited;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const k = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[k] as number;
}

async function healthz(url: string): Promise<{ batches: number; texts: number }> {
  return (await (await fetch(`${url}/healthz`)).json()) as { batches: number; texts: number };
}

/** CLIENTS loops sending one-text requests until `total` have been sent. */
async function load(url: string, total: number) {
  let next = 0;
  let errors = 0;
  const latencies: number[] = [];
  const client = async () => {
    while (next < total) {
      const text = demoTexts[next++ % demoTexts.length] as string;
      const t0 = performance.now();
      try {
        const res = await fetch(`${url}/v1/classify`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ texts: [text] }),
        });
        const body = (await res.json()) as { results?: unknown[] };
        if (res.status !== 200 || body.results?.length !== 1) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t0);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, client));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { seconds, latencies, errors };
}

async function measure(name: string, model: string, run: string, maxBatch: number, requests: number) {
  process.stderr.write(`bench:serve: ${name} (${requests} requests, ${CLIENTS} clients)\n`);
  const server = await startServer(run, maxBatch);
  try {
    await load(server.url, 2 * CLIENTS); // warm-up: sessions, connections
    const before = await healthz(server.url);
    const r = await load(server.url, requests);
    const after = await healthz(server.url);
    const batches = after.batches - before.batches;
    const round = (x: number) => +x.toFixed(2);
    return {
      name,
      model,
      maxBatch,
      requests,
      clients: CLIENTS,
      errors: r.errors,
      rps: +(requests / r.seconds).toFixed(1),
      latency_ms: {
        p50: round(percentile(r.latencies, 50)),
        p90: round(percentile(r.latencies, 90)),
        p99: round(percentile(r.latencies, 99)),
        max: round(r.latencies.at(-1) ?? Number.NaN),
      },
      model_calls: batches,
      mean_texts_per_call: +((after.texts - before.texts) / Math.max(1, batches)).toFixed(2),
      seconds: round(r.seconds),
    };
  } finally {
    await stopServer(server);
  }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "toxlora-bench-serve-"));
  try {
    const results = [];
    if (process.env.BENCH_RUN) {
      const n = Number(process.env.BENCH_REQUESTS ?? 1000);
      results.push(await measure("given-run", `run ${process.env.BENCH_RUN}`, process.env.BENCH_RUN, 32, n));
    } else {
      const tiny = await trainRun(join(dir, "tiny"), { hidden: 16, layers: 1, heads: 4, ffn: 32 });
      const tinyModel = "BERT-shaped, 1 layer, hidden 16 (trained 1 epoch on the demo data)";
      const nTiny = Number(process.env.BENCH_REQUESTS ?? 1000);
      results.push(await measure("tiny", tinyModel, tiny, 32, nTiny));
      process.stderr.write("bench:serve: training the 2x768 run\n");
      const bert = await trainRun(join(dir, "bert"), { hidden: 768, layers: 2, heads: 12, ffn: 3072 });
      const bertModel = "BERT-shaped, 2 layers, hidden 768, 12 heads, FFN 3072, LoRA r=8 merged";
      const nBert = Number(process.env.BENCH_REQUESTS ?? 400);
      results.push(await measure("bert-2x768", bertModel, bert, 32, nBert));
      results.push(await measure("bert-2x768-no-batching", bertModel, bert, 1, nBert));
    }
    const result = {
      bench: "serve",
      transport: "HTTP/1.1 keep-alive over loopback; server is `toxlora serve` in its own process",
      request: "POST /v1/classify with one short Japanese post (bundled demo data, 10–60 characters)",
      threads: availableParallelism(),
      results,
      total_errors: results.reduce((s, r) => s + r.errors, 0),
      date: new Date().toISOString(),
    };
    console.log(JSON.stringify(result));
    mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
    writeFileSync(new URL("./results/serve.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
