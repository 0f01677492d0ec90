// `toxlora tweets fetch | import | score`: collect posts from the X API v2 (or files the user already
// has) into one JSONL schema, and score them with a trained run.
import { type Command, InvalidArgumentError, Option } from "commander";
import { hashProgress } from "../run/progress.js";
import { type ImportFormat, importTweets } from "../sources/import.js";
import { buildSearchQuery, QUERY_PRESETS } from "../sources/query.js";
import { defaultSummaryFile, formatScoreSummary, type ScoreSummary, scoreTweets } from "../sources/score.js";
import { DEFAULT_BASE_URL, fetchTweets } from "../sources/x-api.js";
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

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

/** stderr lines, plus a transient status line (overwritten in a terminal, throttled in a log file). */
function stderrReporter(): { log: (line: string) => void; status: (line: string) => void } {
  const tty = process.stderr.isTTY === true;
  let statusShown = false;
  let lastStatusAt = 0;
  return {
    log: (line) => {
      if (statusShown) process.stderr.write("\r\x1b[K");
      statusShown = false;
      lastStatusAt = 0;
      process.stderr.write(`${line}\n`);
    },
    status: (line) => {
      if (tty) {
        process.stderr.write(`\r\x1b[K${line}`);
        statusShown = true;
      } else if (Date.now() - lastStatusAt >= 5000) {
        // Not a terminal: one countdown line every 5 s is visible without flooding a log.
        process.stderr.write(`${line}\n`);
        lastStatusAt = Date.now();
      }
    },
  };
}

interface FetchFlags {
  query?: string;
  preset?: string;
  out: string;
  since?: string;
  until?: string;
  max?: number;
  lang: string;
  excludeRetweets: boolean;
  archive?: boolean;
  baseUrl: string;
  pageSize?: number;
  normalize?: boolean;
}

async function runFetch(flags: FetchFlags): Promise<void> {
  const token = process.env.X_BEARER_TOKEN;
  if (!token) {
    throw new Error("X_BEARER_TOKEN is not set (an app bearer token from the X developer portal)");
  }
  const query = buildSearchQuery({
    query: flags.query,
    preset: flags.preset,
    lang: flags.lang,
    excludeRetweets: flags.excludeRetweets,
  });
  const { log, status } = stderrReporter();
  log(`query: ${query}`);

  // First Ctrl-C: finish cleanly between pages (the file and state stay consistent). Second: quit now —
  // still safe, since every page is appended with complete lines and fsynced before the state moves.
  const res = await withInterrupt("interrupted: stopping between pages", (signal) =>
    fetchTweets({
      query,
      out: flags.out,
      bearerToken: token,
      baseUrl: flags.baseUrl,
      archive: flags.archive,
      since: flags.since,
      until: flags.until,
      max: flags.max,
      pageSize: flags.pageSize,
      normalize: flags.normalize,
      signal,
      log,
      status,
    }),
  );
  const how = {
    end: "all results fetched",
    max: `--max ${flags.max} reached; raise --max and re-run to continue`,
    interrupted: "interrupted; re-run the same command to continue",
    "already-complete": "already complete",
  }[res.stop];
  process.stdout.write(`${flags.out}: ${res.total} tweets (${res.written} new) — ${how}\n`);
  if (res.stop === "interrupted") process.exitCode = 130;
}

export function register(program: Command): void {
  const tweets = program
    .command("tweets")
    .description(
      "Collect posts from the X API v2 or from files, normalised to one JSONL schema, and score them",
    );

  tweets
    .command("fetch")
    .description(
      "Search X (API v2) and append the tweets to a JSONL file; resumable (state in <out>.state.json). " +
        "Needs X_BEARER_TOKEN.",
    )
    .option("--query <q>", "search query in X syntax (ANDed with --preset)")
    .addOption(new Option("--preset <name>", "a ready-made query").choices(Object.keys(QUERY_PRESETS)))
    .requiredOption("--out <file>", "output JSONL (appended to; re-run to resume)")
    .option("--since <iso>", "oldest post time (ISO 8601), sent as start_time")
    .option("--until <iso>", "newest post time (ISO 8601), sent as end_time")
    .option("--max <n>", "stop when the output holds this many tweets", positiveInt)
    .option("--lang <code>", 'language operator added to the query ("any" for none)', "ja")
    .option("--exclude-retweets", "add -is:retweet", true)
    .option("--no-exclude-retweets", "keep retweets")
    .option("--archive", "full-archive search (/2/tweets/search/all; needs a Pro or Enterprise plan)")
    .option("--base-url <url>", "API base URL", DEFAULT_BASE_URL)
    .option("--page-size <n>", "tweets per request (10-100; 10-500 with --archive)", positiveInt)
    .option("--normalize", "also write text_normalized (URL/@mention placeholders, NFKC)")
    .action(async (flags: FetchFlags) => {
      await runFetch(flags);
    });

  tweets
    .command("import")
    .description("Convert tweets you already have (X archive tweets.js, JSON/JSONL, CSV) to toxlora's JSONL")
    .argument("<files...>", "input files")
    .requiredOption("--out <file>", "output JSONL (written atomically)")
    .addOption(
      new Option("--format <fmt>", "input format")
        .choices(["auto", "archive", "json", "jsonl", "csv", "tsv"])
        .default("auto"),
    )
    .option("--normalize", "also write text_normalized (URL/@mention placeholders, NFKC)")
    .action((files: string[], flags: { out: string; format: ImportFormat; normalize?: boolean }) => {
      const { log } = stderrReporter();
      const res = importTweets(files, flags.out, { format: flags.format, normalize: flags.normalize, log });
      const dup = res.duplicates > 0 ? ` (${res.duplicates} repeated ids dropped)` : "";
      process.stdout.write(`${flags.out}: ${res.written} tweets${dup}\n`);
    });

  const score = tweets
    .command("score")
    .description(
      "Score a tweets JSONL with a trained run: per-label probabilities and decisions, plus a summary",
    )
    .requiredOption("--run <dir>", "run directory written by `toxlora train`")
    .requiredOption("--input <file>", "tweets JSONL (from `tweets fetch` or `tweets import`)")
    .requiredOption("--out <file>", "scored JSONL (written to <out>.partial until complete)")
    .option(
      "--resume",
      "continue an interrupted run into the same --out (with --queue the same command continues unasked)",
    )
    .option("--batch-size <n>", "tweets per classifier call", positiveInt, 32)
    .option("--normalize", "normalise texts that have no text_normalized yet")
    .option("--summary <file>", "summary JSON (default: summary.json beside --out)")
    .option("--top <n>", "examples per label in the summary", positiveInt, 5)
    .option("--no-chart", "do not draw the bar chart (summary.svg/.png beside the summary)")
    .option(
      "--queue <url>",
      "score on a cluster of `toxlora worker`s: Redis URL (redis://[:password@]host[:port][/db])",
    )
    .option("--chunk-size <n>", "with --queue: tweets per job", positiveInt, 2000)
    .option("--max-attempts <n>", "with --queue: tries per chunk before the run stops", positiveInt, 3)
    .addOption(quantKernelOption());
  addComputeOptions(addRunQuantOptions(score)).action(
    async (
      flags: {
        run: string;
        input: string;
        out: string;
        batchSize: number;
        normalize?: boolean;
        summary?: string;
        top: number;
        chart: boolean;
        resume?: boolean;
        queue?: string;
        chunkSize: number;
        maxAttempts: number;
      } & QuantFlags &
        QuantKernelFlags &
        ComputeFlags,
    ) => {
      const { log, status } = stderrReporter();
      refuseQuantKernelOnQueue(flags);
      // What one machine and the queue share: how rows are scored and what is written beside them.
      const scoring = {
        batchSize: flags.batchSize,
        normalize: flags.normalize,
        topK: flags.top,
        summaryFile: flags.summary,
        chartBase: flags.chart ? undefined : null,
        log,
      };
      const printSummary = (summary: ScoreSummary) => {
        process.stdout.write(formatScoreSummary(summary));
        const files = [flags.out, flags.summary ?? defaultSummaryFile(flags.out), summary.chart?.png];
        process.stdout.write(`wrote ${files.filter(Boolean).join(", ")}\n`);
      };
      if (flags.queue !== undefined) {
        const { parseRedisUrl, redactedMessage } = await import("../cluster/redis.js");
        const { scoreTweetsOnQueue } = await import("../cluster/tweets.js");
        const { clusterStatus } = await import("./predict.js");
        const redis = parseRedisUrl(flags.queue);
        const summary = await withInterrupt("stopping: writing the chunks already scored", (signal) =>
          scoreTweetsOnQueue(flags.input, flags.out, {
            redis,
            run: flags.run,
            ...quantFromFlags(flags),
            resume: flags.resume ? true : "auto",
            chunkSize: flags.chunkSize,
            maxAttempts: flags.maxAttempts,
            ...scoring,
            signal,
            onProgress: (p) => status(clusterStatus(p)),
          }),
        ).catch((err: unknown) => {
          throw new Error(redactedMessage(err, redis.secrets));
        });
        printSummary(summary);
        return;
      }
      // Loaded on demand: fetch/import should not pay for onnxruntime and the model code.
      const { loadClassifier } = await import("../predict/classifier.js");
      const classifier = await loadClassifier(flags.run, {
        ...quantFromFlags(flags),
        quantKernel: flags.quantKernel,
        device: flags.device,
        threads: flags.threads,
        onNotice: (line) => log(`note: ${line}`),
        onHashProgress: hashProgress(),
      });
      try {
        const summary = await withInterrupt("stopping after this batch", (signal) =>
          scoreTweets(classifier, flags.input, flags.out, { resume: flags.resume, ...scoring, signal }),
        );
        printSummary(summary);
      } finally {
        await classifier.close();
      }
    },
  );
}
