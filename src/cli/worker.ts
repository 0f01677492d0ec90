// `toxlora worker --queue redis://… --run <dir>`: score chunk jobs of `predict --queue` and
// `tweets score --queue` until stopped. SIGTERM/SIGINT finish the chunk in hand, then exit.
import type { Command } from "commander";
import { parseRedisUrl, redactedMessage } from "../cluster/redis.js";
import { startWorker } from "../cluster/worker.js";
import { positiveInt } from "./analyze.js";
import { addRunQuantOptions, type QuantFlags, quantFromFlags } from "./quant.js";

interface WorkerFlags {
  queue: string;
  run: string;
  threads?: number;
  concurrency: number;
  lockSeconds: number;
  quiet?: boolean;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error("expected a positive number");
  return n;
}

export function register(program: Command): void {
  const cmd = program
    .command("worker")
    .description(
      "score chunks from a Redis queue for `predict --queue` / `tweets score --queue` (runs until stopped)",
    )
    .requiredOption("--queue <url>", "Redis URL: redis://[:password@]host[:port][/db] or rediss:// for TLS")
    .requiredOption("--run <dir>", "run directory; only chunks made for this run are taken")
    .option("--threads <n>", "CPU threads of the classifier", positiveInt)
    .option("--concurrency <n>", "chunks scored at once", positiveInt, 1)
    .option(
      "--lock-seconds <s>",
      "a chunk whose worker stops renewing its lock this long is given to another worker (keep it well above one batch's time: the lock is renewed between forward passes)",
      positiveNumber,
      30,
    )
    .option("--quiet", "log only errors");
  // --quantize: load the run's base quantized and take the chunks of `predict --queue --quantize`.
  addRunQuantOptions(cmd).action(async (f: WorkerFlags & QuantFlags) => {
    const redis = parseRedisUrl(f.queue);
    const log = (line: string) => {
      if (!f.quiet || line.startsWith("redis:") || line.includes("failed")) process.stderr.write(`${line}\n`);
    };
    let worker: Awaited<ReturnType<typeof startWorker>>;
    try {
      worker = await startWorker({
        redis,
        run: f.run,
        ...quantFromFlags(f),
        threads: f.threads,
        concurrency: f.concurrency,
        lockSeconds: f.lockSeconds,
        log,
      });
    } catch (err) {
      throw new Error(redactedMessage(err, redis.secrets));
    }
    await new Promise<void>((done) => {
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) process.exit(130); // second signal: leave at once; the lock expires
        stopping = true;
        process.stderr.write(`${sig}: finishing the chunk in hand (send again to quit at once)\n`);
        void worker.close().then(done);
      };
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGINT", () => stop("SIGINT"));
    });
    process.stderr.write(`worker ${worker.name} stopped after ${worker.chunks} chunks\n`);
  });
}
