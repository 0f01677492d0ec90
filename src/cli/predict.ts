// `toxlora predict --run <dir> --input <file|-> --out <file>`: batch scoring, streamed and resumable.
import { existsSync } from "node:fs";
import { type Command, Option } from "commander";
import type { ClusterProgress } from "../cluster/coordinator.js";
import { predictFileOnQueue } from "../cluster/predict.js";
import { parseRedisUrl, redactedMessage } from "../cluster/redis.js";
import { loadClassifier } from "../predict/classifier.js";
import type { InputFormat } from "../predict/io.js";
import {
  DEFAULT_MAX_TEXT_BYTES,
  inputWarnings,
  type PredictFileResult,
  predictFile,
} from "../predict/predict.js";
import { hashProgress } from "../run/progress.js";
import { positiveInt } from "./analyze.js";
import { addComputeOptions, type ComputeFlags } from "./compute.js";
import { withInterrupt } from "./interrupt.js";
import {
  addRunQuantOptions,
  type QuantFlags,
  type QuantKernelFlags,
  quantFromFlags,
  quantKernelOption,
  refuseQuantKernelOnQueue,
} from "./quant.js";
import { afterProgress, progressLine } from "./status.js";

interface PredictFlags extends ComputeFlags, QuantKernelFlags {
  run: string;
  maxTextBytes: number;
  strictUtf8?: boolean;
  input: string;
  out: string;
  resume?: boolean;
  force?: boolean;
  format?: InputFormat;
  textField?: string;
  idField?: string;
  batchSize: number;
  quiet?: boolean;
  queue?: string;
  chunkSize: number;
  maxAttempts: number;
}

/** "1h02m", "3m05s", "42s". */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** One status line for the whole cluster. */
export function clusterStatus(p: ClusterProgress): string {
  const parts = [`scored ${p.rows} texts (${p.rowsPerSecond.toFixed(1)}/s)`];
  if (p.workers !== undefined) parts.push(`${p.workers} worker${p.workers === 1 ? "" : "s"}`);
  if (p.etaSeconds !== undefined) parts.push(`ETA ${formatDuration(p.etaSeconds)}`);
  return parts.join(", ");
}

/** The last line of a prediction (after the progress line). */
function finished(r: PredictFileResult, out: string): string {
  const where = out === "-" ? "to stdout" : `in ${out}${r.interrupted ? ".partial" : ""}`;
  return (
    `${afterProgress()}${r.interrupted ? "interrupted" : "done"}: ${r.rows} rows ${where}` +
    `${r.resumedRows ? ` (${r.resumedRows} kept from before)` : ""}, ${r.rowsPerSecond.toFixed(1)} texts/s\n`
  );
}

/** Scores on the queue; errors come back with the password masked. */
async function predictOnQueue(f: PredictFlags & QuantFlags, signal: AbortSignal): Promise<PredictFileResult> {
  const redis = parseRedisUrl(f.queue as string);
  const status = (line: string) => {
    if (!f.quiet) progressLine(line);
  };
  try {
    return await predictFileOnQueue({
      redis,
      run: f.run,
      ...quantFromFlags(f),
      input: f.input,
      out: f.out,
      resume: f.resume,
      maxTextBytes: f.maxTextBytes,
      strictUtf8: f.strictUtf8,
      format: f.format,
      textField: f.textField,
      idField: f.idField,
      chunkSize: f.chunkSize,
      batchSize: f.batchSize,
      maxAttempts: f.maxAttempts,
      signal,
      onProgress: (p) => status(clusterStatus(p)),
      log: (line) => process.stderr.write(`${process.stderr.isTTY ? "\n" : ""}${line}\n`),
    });
  } catch (err) {
    throw new Error(redactedMessage(err, redis.secrets));
  }
}

export function register(program: Command): void {
  const cmd = program
    .command("predict")
    .description(
      "score texts with a trained run: per-label probabilities, true/false decisions at the run's thresholds and the flagged labels",
    )
    .requiredOption("--run <dir>", "run directory written by `toxlora train`")
    .requiredOption("--input <file|->", "texts: .jsonl, .csv, .tsv, .txt (one per line) or - for stdin")
    .requiredOption(
      "--out <file|->",
      "output JSON lines (written to <out>.partial until complete), or - for stdout",
    )
    .option("--resume", "continue an interrupted prediction into the same --out")
    .option("--force", "overwrite an existing --out (without it, an existing --out is refused)")
    .addOption(
      new Option("--format <f>", "input format (default: from the extension)").choices([
        "jsonl",
        "csv",
        "tsv",
        "txt",
      ]),
    )
    .option("--text-field <name>", "field holding the text (default text)")
    .option("--id-field <name>", "field holding the id (default id, when present)")
    .option("--batch-size <n>", "texts per forward pass", positiveInt, 16)
    .option("--quiet", "no progress output")
    .option(
      "--max-text-bytes <n>",
      "largest text accepted, in bytes: a longer one stops the run, naming its line",
      positiveInt,
      DEFAULT_MAX_TEXT_BYTES,
    )
    .option(
      "--strict-utf8",
      "stop at the first line that is not valid UTF-8 (default: read as U+FFFD and count)",
    )
    .option(
      "--queue <url>",
      "score on a cluster: Redis URL (redis://[:password@]host[:port][/db], rediss:// for TLS) served by `toxlora worker`s",
    )
    .option("--chunk-size <n>", "with --queue: rows per job", positiveInt, 2000)
    .option("--max-attempts <n>", "with --queue: tries per chunk before the run stops", positiveInt, 3)
    .addOption(quantKernelOption());
  addComputeOptions(addRunQuantOptions(cmd)).action(async (f: PredictFlags & QuantFlags) => {
    if (f.queue !== undefined) {
      if (f.out === "-") throw new Error("--queue writes its rows to a file: give --out <file>, not -");
      refuseQuantKernelOnQueue(f);
      const r = await withInterrupt(
        "stopping: writing the chunks already scored; rerun the same command to continue",
        (signal) => predictOnQueue(f, signal),
      );
      if (!f.quiet) process.stderr.write(finished(r, f.out));
      for (const w of inputWarnings(r, f.input)) process.stderr.write(`warning: ${w}\n`);
      if (r.interrupted) process.exitCode = 130;
      return;
    }
    if (f.out !== "-" && !f.resume && !f.force && existsSync(f.out))
      throw new Error(`${f.out} already exists: pass --force to overwrite it (or --resume to continue it)`);
    const clf = await loadClassifier(f.run, {
      ...quantFromFlags(f),
      quantKernel: f.quantKernel,
      batchSize: f.batchSize,
      threads: f.threads,
      device: f.device,
      onNotice: (line) => process.stderr.write(`note: ${line}\n`),
      onHashProgress: hashProgress(f.quiet ? "quiet" : "auto"),
    });
    try {
      const r = await withInterrupt("stopping after this chunk; rerun with --resume to continue", (signal) =>
        predictFile(clf, {
          input: f.input,
          out: f.out,
          resume: f.resume,
          format: f.format,
          textField: f.textField,
          idField: f.idField,
          maxTextBytes: f.maxTextBytes,
          strictUtf8: f.strictUtf8,
          signal,
          onProgress: (rows, s) => {
            if (!f.quiet) progressLine(`scored ${rows} texts (${(rows / Math.max(s, 1e-9)).toFixed(1)}/s)`);
          },
        }),
      );
      if (!f.quiet) process.stderr.write(finished(r, f.out));
      for (const w of inputWarnings(r, f.input)) process.stderr.write(`warning: ${w}\n`);
      if (r.interrupted) process.exitCode = 130;
    } finally {
      await clf.close();
    }
  });
}
