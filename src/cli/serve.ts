// `toxlora serve --run <dir>`: the run's classifier over HTTP (JSON API + a page to try it).
import { existsSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { loadClassifier } from "../predict/classifier.js";
import { describeQuantization } from "../quant/weights.js";
import { hashProgress } from "../run/progress.js";
import type { TrainedClassifier } from "../run/types.js";
import { createServer } from "../serve/server.js";
import { positiveInt } from "./analyze.js";
import { addComputeOptions, type ComputeFlags } from "./compute.js";
import {
  addRunQuantOptions,
  type QuantFlags,
  type QuantKernelFlags,
  quantFromFlags,
  quantKernelOption,
} from "./quant.js";

interface ServeFlags extends ComputeFlags {
  run: string;
  port: number;
  host: string;
  maxBatch: number;
  maxTextLength: number;
  maxBodyBytes: number;
  batchWaitMs: number;
  report?: string;
  maxQueue?: number;
  maxQueueBytes: number;
  allowedHost: string[];
  showPaths?: boolean;
  strictUtf8?: boolean;
  quiet?: boolean;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError("expected a port 0–65535");
  return n;
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a whole number ≥ 0");
  return n;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/** "base int8 (block 16) on the qgemm kernel; " for a quantized base (it changes the probabilities). */
async function baseDescription(classifier: TrainedClassifier): Promise<string> {
  const q = (await classifier.identity?.())?.quantize as
    | { scheme: string; blockSize?: number; doubleQuant?: boolean; kernel?: string }
    | undefined;
  if (!q) return "";
  return `base ${describeQuantization(q)} on the ${q.kernel ?? "matmulnbits"} kernel; `;
}

export function register(program: Command): void {
  const cmd = program
    .command("serve")
    .description(
      "serve a trained run over HTTP: POST /v1/classify, GET /v1/labels, /healthz, and a page at /",
    )
    .requiredOption("--run <dir>", "run directory written by `toxlora train`")
    .option("--port <n>", "TCP port (0: any free port)", port, 8080)
    .option("--host <addr>", "address to listen on (0.0.0.0 exposes the server to the network)", "127.0.0.1")
    .option("--max-batch <n>", "most texts per request and per model call", positiveInt, 32)
    .option("--max-text-length <n>", "longest text accepted, in characters", positiveInt, 20_000)
    .option("--max-body-bytes <n>", "largest request body accepted", positiveInt, 1024 * 1024)
    .option(
      "--batch-wait-ms <n>",
      "how long a request waits to share a model call with others",
      wholeNumber,
      5,
    )
    .option(
      "--max-queue <n>",
      "most texts waiting to be scored; beyond it 503 + Retry-After (default 32 × --max-batch)",
      positiveInt,
    )
    .option(
      "--max-queue-bytes <n>",
      "most request-body bytes received and waiting; beyond it 503 + Retry-After",
      positiveInt,
      32 * 1024 * 1024,
    )
    .option(
      "--allowed-host <name>",
      "also accept this Host header (repeatable; e.g. the name a proxy forwards); others get 403",
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option(
      "--strict-utf8",
      "answer 400 to a body that is not valid UTF-8 (default: read it with U+FFFD, counted in /healthz)",
    )
    .option("--show-paths", "show absolute local paths in /report (default: relative to the run)")
    .option("--report <file>", "HTML report to serve at /report (default <run>/report.html when present)")
    .option("--quiet", "do not log requests")
    .addOption(quantKernelOption())
    .addHelpText(
      "after",
      "\nExample:\n  toxlora serve --run outputs/bert/2026-01-01/12-00-00 --port 8080\n" +
        `  curl -s localhost:8080/v1/classify -H 'content-type: application/json' -d '{"texts": ["このアニメ最高！"]}'\n`,
    );
  addComputeOptions(addRunQuantOptions(cmd)).action(async (f: ServeFlags & QuantFlags & QuantKernelFlags) => {
    const reportPath = f.report ?? join(f.run, "report.html");
    if (f.report && !existsSync(f.report)) throw new Error(`--report: ${f.report} does not exist`);
    process.stderr.write(`serve: loading ${f.run}\n`);
    const classifier = await loadClassifier(f.run, {
      ...quantFromFlags(f),
      quantKernel: f.quantKernel,
      batchSize: f.maxBatch,
      threads: f.threads,
      device: f.device,
      onNotice: (line) => process.stderr.write(`serve: note: ${line}\n`),
      onHashProgress: hashProgress(),
    });
    const server = await createServer(classifier, {
      port: f.port,
      host: f.host,
      maxBatch: f.maxBatch,
      maxTextLength: f.maxTextLength,
      maxBodyBytes: f.maxBodyBytes,
      batchWaitMs: f.batchWaitMs,
      maxQueue: f.maxQueue,
      maxQueueBytes: f.maxQueueBytes,
      allowedHosts: f.allowedHost,
      showPaths: f.showPaths,
      strictUtf8: f.strictUtf8,
      runDir: f.run,
      reportPath: existsSync(reportPath) ? reportPath : undefined,
      title: basename(resolve(f.run)),
      log: f.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
    });
    if (!LOOPBACK.has(f.host)) {
      process.stderr.write(`serve: warning: listening on ${f.host}: other machines can reach this server\n`);
    }
    process.stderr.write(
      `serve: ${classifier.labels.length} labels (${classifier.labels.join(", ")}); ` +
        (await baseDescription(classifier)) +
        `${existsSync(reportPath) ? "report at /report" : "no report (make one with `toxlora report`)"}\n`,
    );
    process.stdout.write(`${server.url}\n`);
    // Ctrl-C / SIGTERM: finish the requests in progress, release the model, exit.
    let stopping = false;
    const stop = async () => {
      if (stopping) process.exit(130);
      stopping = true;
      process.stderr.write("serve: stopping\n");
      await server.close();
      await classifier.close();
      process.exit(0);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}
