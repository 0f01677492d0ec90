// `npm run bench:serve`: load check of `toxlora serve`. N concurrent clients send a fixed number of
// one-text requests (real short Japanese posts from the bundled demo data) over loopback to the
// server, started as its own process with the CLI (`toxlora serve --run <dir>`), and we record
// requests per second, p50/p90/p99 latency, errors, and how requests were batched.
//
// Classifiers: real runs made by the trainer, trained here in seconds on the demo data:
// - "tiny": 1-layer BERT-shaped model, hidden 16 (the cost is the server's, not the model's), with
//   micro-batching on (--max-batch 32) and off (--max-batch 1);
// - "bert-2x768": 2 layers, hidden 768, 12 heads, FFN 3072 (model-bound), with the server's
//   micro-batching on (--max-batch 32) and off (--max-batch 1).
// Or set BENCH_RUN=<run dir> to load an existing run instead (micro-batching on and off).
// Batching on and off are measured in interleaved rounds (BENCH_ROUNDS, default 3) so that other
// work on the machine affects both alike. Settings: BENCH_CLIENTS (default 16), BENCH_REQUESTS per
// round (default 500 for tiny, 200 for bert), BENCH_WAIT_MS (the server's --batch-wait-ms, default 5).
// Results: one JSON line on stdout and bench/results/serve.json.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeJsonAtomic } from "../src/io/atomic.js";
import { demoTexts, trainDemoRun } from "./demo-run.js";

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const WAIT_MS = Number(process.env.BENCH_WAIT_MS ?? 5);
const ROOT = fileURLToPath(new URL("..", import.meta.url));

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
      ...["--batch-wait-ms", String(WAIT_MS)],
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

interface Config {
  name: string;
  model: string;
  run: string;
  maxBatch: number;
}

/**
 * Measures configs that should be compared in interleaved rounds (A, B, A, B, ...), so a change in
 * the machine's load during the run affects all of them alike. Each config's server runs in its own
 * process for the whole measurement. Reports the median round's rps and latency percentiles over
 * all rounds.
 */
async function measure(configs: Config[], requests: number, rounds: number) {
  const servers: Server[] = [];
  try {
    for (const c of configs) servers.push(await startServer(c.run, c.maxBatch));
    for (const s of servers) await load(s.url, 2 * CLIENTS); // warm-up: sessions, connections
    const before = await Promise.all(servers.map((s) => healthz(s.url)));
    const perRound = configs.map(() => [] as { rps: number; latencies: number[]; errors: number }[]);
    for (let r = 0; r < rounds; r++) {
      for (const [k, s] of servers.entries()) {
        process.stderr.write(
          `bench:serve: ${configs[k]?.name} round ${r + 1}/${rounds} (${requests} requests)\n`,
        );
        const res = await load(s.url, requests);
        perRound[k]?.push({ rps: requests / res.seconds, latencies: res.latencies, errors: res.errors });
      }
    }
    const after = await Promise.all(servers.map((s) => healthz(s.url)));
    const round2 = (x: number) => +x.toFixed(2);
    return configs.map((c, k) => {
      const rs = perRound[k] ?? [];
      const rps = rs.map((x) => x.rps).sort((a, b) => a - b);
      const latencies = rs.flatMap((x) => x.latencies).sort((a, b) => a - b);
      const batches = (after[k]?.batches ?? 0) - (before[k]?.batches ?? 0);
      const texts = (after[k]?.texts ?? 0) - (before[k]?.texts ?? 0);
      return {
        name: c.name,
        model: c.model,
        maxBatch: c.maxBatch,
        requests: requests * rounds,
        rounds,
        clients: CLIENTS,
        errors: rs.reduce((sum, x) => sum + x.errors, 0),
        rps: +(rps[Math.floor(rps.length / 2)] ?? Number.NaN).toFixed(1),
        rps_rounds: rps.map((x) => +x.toFixed(1)),
        latency_ms: {
          p50: round2(percentile(latencies, 50)),
          p90: round2(percentile(latencies, 90)),
          p99: round2(percentile(latencies, 99)),
          max: round2(latencies.at(-1) ?? Number.NaN),
        },
        model_calls: batches,
        mean_texts_per_call: +(texts / Math.max(1, batches)).toFixed(2),
      };
    });
  } finally {
    for (const s of servers) await stopServer(s);
  }
}

/** The two configs compared for one run: the server's micro-batching on (32) and off (1). */
function batchingOnAndOff(name: string, model: string, run: string): Config[] {
  return [
    { name, model, run, maxBatch: 32 },
    { name: `${name}-no-batching`, model, run, maxBatch: 1 },
  ];
}

/** Runs trained here when BENCH_RUN is not set: one server-bound, one model-bound. */
const SIZES = [
  {
    name: "tiny",
    size: { hidden: 16, layers: 1, heads: 4, ffn: 32 },
    model: "BERT-shaped, 1 layer, hidden 16 (trained 1 epoch on the demo data)",
    requests: 500,
  },
  {
    name: "bert-2x768",
    size: { hidden: 768, layers: 2, heads: 12, ffn: 3072 },
    model: "BERT-shaped, 2 layers, hidden 768, 12 heads, FFN 3072, LoRA r=8 merged",
    requests: 200,
  },
];

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "toxlora-bench-serve-"));
  try {
    const results = [];
    const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
    if (process.env.BENCH_RUN) {
      const run = process.env.BENCH_RUN;
      const configs = batchingOnAndOff("given-run", `run ${run}`, run);
      results.push(...(await measure(configs, Number(process.env.BENCH_REQUESTS ?? 400), rounds)));
    } else {
      for (const s of SIZES) {
        process.stderr.write(`bench:serve: training the ${s.name} run\n`);
        const run = await trainDemoRun(join(dir, s.name), s.size);
        const configs = batchingOnAndOff(s.name, s.model, run);
        results.push(...(await measure(configs, Number(process.env.BENCH_REQUESTS ?? s.requests), rounds)));
      }
    }
    const result = {
      bench: "serve",
      transport: "HTTP/1.1 keep-alive over loopback; server is `toxlora serve` in its own process",
      request: "POST /v1/classify with one short Japanese post (bundled demo data, 10–60 characters)",
      threads: availableParallelism(),
      batch_wait_ms: WAIT_MS,
      results,
      total_errors: results.reduce((s, r) => s + r.errors, 0),
      date: new Date().toISOString(),
    };
    console.log(JSON.stringify(result));
    await writeJsonAtomic(join(ROOT, "bench", "results", "serve.json"), result);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
