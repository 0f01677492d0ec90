// `npm run bench:cluster`: scoring on the Redis queue, measured side by side in one run.
// - scaling: the same input scored by `predict --queue` with 1 worker, then with 2 workers (each
//   `toxlora worker --threads 1`, its own process);
// - coordinator overhead: `predict --queue` with 1 worker against single-process
//   `predict --threads 1` on the same input.
// Throughput is the texts/s each command reports for its scoring phase (model loading and process
// start-up excluded: workers are started and ready before the coordinator starts). The three
// configurations run in interleaved rounds (BENCH_ROUNDS, default 3) so other load on the machine hits
// all alike; the best round of each is reported, and every round is kept.
// Classifier: a real run trained here on the demo data, BERT-shaped, 4 layers, hidden 384 (scoring is
// model-bound, as with a real model). Rows: BENCH_ROWS (default 6000) demo posts, --chunk-size
// BENCH_CHUNK (default 500). Redis: redis-server started here on a free loopback port.
// Results: one JSON line on stdout and bench/results/cluster.json.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeJsonAtomic } from "../src/io/atomic.js";
import { startRedis } from "../test/cluster/redis-server.js";
import { demoTexts, trainDemoRun } from "./demo-run.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MAIN = join(ROOT, "src/cli/main.ts");
const ROWS = Number(process.env.BENCH_ROWS ?? 6000);
const CHUNK = Number(process.env.BENCH_CHUNK ?? 500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SIZE = { hidden: 384, layers: 4, heads: 6, ffn: 1536 };

interface Proc {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

function cli(args: string[]): Proc {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    out += d;
  });
  const exit = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, output: () => out, exit };
}

/** Runs a scoring command and returns the texts/s it reports for its scoring phase. */
async function score(args: string[]): Promise<{ rps: number; wallSeconds: number }> {
  const t0 = Date.now();
  const p = cli(args);
  const code = await p.exit;
  if (code !== 0) throw new Error(`toxlora ${args.join(" ")} exited ${code}:\n${p.output()}`);
  const m = /done: \d+ rows .*?, ([\d.]+) texts\/s/.exec(p.output());
  if (!m) throw new Error(`no throughput in the output:\n${p.output()}`);
  return { rps: Number(m[1]), wallSeconds: (Date.now() - t0) / 1000 };
}

async function startWorkers(url: string, run: string, n: number): Promise<Proc[]> {
  const ws = Array.from({ length: n }, () => cli(["worker", "--queue", url, "--run", run, "--threads", "1"]));
  for (const w of ws) {
    while (!w.output().includes("ready")) {
      if (w.child.exitCode !== null) throw new Error(`worker exited:\n${w.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return ws;
}

async function stopWorkers(ws: Proc[]): Promise<void> {
  for (const w of ws) w.child.kill("SIGTERM");
  await Promise.all(ws.map((w) => w.exit));
}

const loadStart = Math.round(loadavg()[0] * 100) / 100;
const dir = mkdtempSync(join(tmpdir(), "toxlora-bench-cluster-"));
const redisDir = join(dir, "redis");
mkdirSync(redisDir);
const redis = await startRedis(redisDir);
try {
  const run = await trainDemoRun(dir, SIZE);
  const input = join(dir, "in.jsonl");
  writeFileSync(
    input,
    Array.from(
      { length: ROWS },
      (_, i) => `${JSON.stringify({ id: `p${i}`, text: demoTexts[i % demoTexts.length] })}\n`,
    ).join(""),
  );
  const rounds: { single: number; oneWorker: number; twoWorkers: number }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const single = await score([
      "predict",
      "--run",
      run,
      "--input",
      input,
      "--out",
      join(dir, `single-${round}.jsonl`),
      "--threads",
      "1",
    ]);
    const queueArgs = (name: string) => [
      ...["predict", "--run", run, "--input", input, "--out", join(dir, `${name}-${round}.jsonl`)],
      ...["--queue", redis.url, "--chunk-size", String(CHUNK)],
    ];
    let ws = await startWorkers(redis.url, run, 1);
    const one = await score(queueArgs("one"));
    await stopWorkers(ws);
    ws = await startWorkers(redis.url, run, 2);
    const two = await score(queueArgs("two"));
    await stopWorkers(ws);
    for (const name of ["one", "two"]) {
      if (
        !readFileSync(join(dir, `${name}-${round}.jsonl`)).equals(
          readFileSync(join(dir, `single-${round}.jsonl`)),
        )
      ) {
        throw new Error(`${name}-worker output differs from predict's`);
      }
    }
    rounds.push({ single: single.rps, oneWorker: one.rps, twoWorkers: two.rps });
    process.stderr.write(`round ${round + 1}: ${JSON.stringify(rounds[round])}\n`);
  }
  const best = (k: "single" | "oneWorker" | "twoWorkers") => Math.max(...rounds.map((r) => r[k]));
  const single = best("single");
  const one = best("oneWorker");
  const two = best("twoWorkers");
  const result = {
    bench: "cluster",
    model: `BERT-shaped, ${SIZE.layers} layers, hidden ${SIZE.hidden} (trained 1 epoch on the demo data)`,
    rows: ROWS,
    chunkSize: CHUNK,
    cores: availableParallelism(),
    // Other work on the machine during the run (1-minute load average at the start and the end).
    loadAverage: [loadStart, Math.round(loadavg()[0] * 100) / 100],
    threadsPerWorker: 1,
    rounds,
    textsPerSecond: { singlePredict: single, oneWorker: one, twoWorkers: two },
    scaling2v1: Math.round((two / one) * 1000) / 1000,
    scalingTarget: 1.8,
    coordinatorOverhead: Math.round((1 - one / single) * 1000) / 1000,
    overheadTarget: 0.1,
    outputsIdentical: true,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await writeJsonAtomic(join(ROOT, "bench/results/cluster.json"), result);
} finally {
  await redis.kill();
  rmSync(dir, { recursive: true, force: true });
}
