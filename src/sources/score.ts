// `tweets score`: run a Classifier over a tweets JSONL in batches, write one scored row per tweet, and
// summarise how many tweets each label flags with the most confident examples.
import { statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { barChart, type RenderOptions, writeChart } from "../charts/charts.js";
import { displayWidth } from "../data/format.js";
import { writeJsonAtomicSync } from "../io/atomic.js";
import { refuseOutputOverInput } from "../io/same-file.js";
import { openResumableJsonlWriter, RowDigest, resumableOutput } from "../predict/io.js";
import { checkResumed, checkResumedCount } from "../predict/predict.js";
import { type ScoredFields, scoredFields } from "../run/output.js";
import type { Classifier, Scored } from "../run/types.js";
import { jsonLines } from "./files.js";
import { normalizeTweetText } from "./normalize.js";

export interface ScoreOptions {
  /** Texts per classifier call (default 32). */
  batchSize?: number;
  /** Normalise texts that have no `text_normalized` yet (see normalizeTweetText). */
  normalize?: boolean;
  /** Examples kept per label in the summary (default 5). */
  topK?: number;
  /** Where to write the summary; default `summary.json` beside the output; null = do not write. */
  summaryFile?: string | null;
  /**
   * Bar chart of flagged tweets per label, written as `<chartBase>.svg` and `.png`; default `summary`
   * beside the summary file (none when the summary is not written); null = no chart.
   */
  chartBase?: string | null;
  /** Chart rendering options (e.g. `fontFiles: []` to skip loading fonts). */
  chartRender?: RenderOptions;
  /** Progress lines for stderr. */
  log?: (line: string) => void;
  signal?: AbortSignal;
  /**
   * Continue the `<out>.partial` of an interrupted run (rows appended per batch, `<out>.state.json`
   * saying what they were made from), refusing one made from another input, run or options;
   * "auto": continue it only when it is the same job, else start over (what `--queue` does).
   */
  resume?: boolean | "auto";
}

/** {@link ScoreOptions} of {@link scoreTweetsWith}: what the scorer is, for a resumed output's check. */
export interface ScoreWithOptions extends ScoreOptions {
  /** The scorer's identity (e.g. the run and a hash of its weights); null when unknown. */
  classifierIdentity?: Record<string, unknown> | null;
}

/** One output row: the tweet's fields and the shared scored fields (src/run/output.ts). */
export interface ScoredTweet extends ScoredFields {
  id: string;
  created_at: string | null;
  author_id: string | null;
  text: string;
}

export interface TopExample {
  id: string;
  prob: number;
  flagged: boolean;
  created_at: string | null;
  author_id: string | null;
  text: string;
}

export interface ScoreSummary {
  input: string;
  output: string;
  total: number;
  labels: string[];
  thresholds: Record<string, number>;
  /** Tweets flagged per label. */
  flagged: Record<string, number>;
  /** flagged / total per label (0 when there are no tweets). */
  rate: Record<string, number>;
  /** Tweets flagged for at least one label. */
  anyFlagged: number;
  /** The highest-probability tweets per label, most probable first. */
  top: Record<string, TopExample[]>;
  /** Chart files, when one was written. */
  chart?: { svg: string; png: string };
}

/** A tweet read for scoring: its position among the input's tweets, its line, and the text to score. */
export interface TweetToScore {
  index: number;
  line: number;
  id: string;
  created_at: string | null;
  author_id: string | null;
  text: string;
  /** What the classifier sees: text_normalized, or the text (normalised with `normalize`). */
  input: string;
}

/**
 * How tweets get their scores: `scoreTweets` calls the classifier here in batches; `tweets score
 * --queue` sends them to the cluster's workers (src/cluster/tweets.ts). `write` must be called with
 * every tweet, in input order.
 */
export type TweetScorer = (
  tweets: AsyncIterable<TweetToScore>,
  write: (tweets: TweetToScore[], scored: Scored[]) => Promise<void>,
) => Promise<void>;

function optString(v: unknown, where: string, field: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "string") throw new Error(`${where}: field "${field}": expected a string`);
  return v;
}

/** The tweets of a JSONL file, checked, with the text the classifier will see. */
export async function* readTweetsToScore(inputFile: string, normalize = false): AsyncGenerator<TweetToScore> {
  let index = 0;
  for await (const { value, line } of jsonLines(inputFile)) {
    const where = `${inputFile}:${line}`;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new Error(`${where}: expected a JSON object`);
    }
    const v = value as Record<string, unknown>;
    const id = v.id;
    if (typeof id !== "string" || id === "") throw new Error(`${where}: field "id": missing or not a string`);
    const text = v.text;
    if (typeof text !== "string") throw new Error(`${where}: field "text": missing or not a string`);
    const normalized = optString(v.text_normalized, where, "text_normalized");
    yield {
      index: index++,
      line,
      id,
      created_at: optString(v.created_at, where, "created_at"),
      author_id: optString(v.author_id, where, "author_id"),
      text,
      input: normalized ?? (normalize ? normalizeTweetText(text) : text),
    };
  }
}

/** The classifier itself, called on consecutive batches of `batchSize` tweets. */
function classifierScorer(classifier: Classifier, batchSize: number, signal?: AbortSignal): TweetScorer {
  return async (tweets, write) => {
    let batch: TweetToScore[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      if (signal?.aborted) throw new Error("scoring interrupted");
      await write(batch, await classifier.predict(batch.map((b) => b.input)));
      batch = [];
    };
    for await (const t of tweets) {
      batch.push(t);
      if (batch.length >= batchSize) await flush();
    }
    await flush();
  };
}

/** Score every tweet of `inputFile` into `outFile` (atomic) and return (and by default write) the summary. */
export async function scoreTweets(
  classifier: Classifier,
  inputFile: string,
  outFile: string,
  opts: ScoreOptions = {},
): Promise<ScoreSummary> {
  const batchSize = Math.max(1, opts.batchSize ?? 32);
  const scorer = classifierScorer(classifier, batchSize, opts.signal);
  return scoreTweetsWith(scorer, classifier.labels, classifier.thresholds, inputFile, outFile, {
    ...opts,
    classifierIdentity: (await classifier.identity?.()) ?? null,
  });
}

/** {@link scoreTweets} with the scores coming from `scorer` (the same rows, summary and chart). */
export async function scoreTweetsWith(
  scorer: TweetScorer,
  classifierLabels: readonly string[],
  classifierThresholds: readonly number[],
  inputFile: string,
  outFile: string,
  opts: ScoreWithOptions = {},
): Promise<ScoreSummary> {
  const topK = Math.max(0, opts.topK ?? 5);
  const labels = [...classifierLabels];
  const thresholds = [...classifierThresholds];
  if (thresholds.length !== labels.length) {
    throw new Error(`classifier has ${labels.length} labels but ${thresholds.length} thresholds`);
  }

  const summaryFile = opts.summaryFile === undefined ? defaultSummaryFile(outFile) : opts.summaryFile;
  const chartBase =
    opts.chartBase !== undefined
      ? opts.chartBase
      : summaryFile !== null
        ? join(dirname(summaryFile), "summary")
        : null;
  refuseOutputOverInput(
    [
      outFile,
      `${outFile}.partial`,
      summaryFile,
      chartBase && `${chartBase}.svg`,
      chartBase && `${chartBase}.png`,
    ].filter((f): f is string => typeof f === "string"),
    [inputFile],
  );

  const tally = new ScoreTally(labels, topK);
  const started = Date.now();
  // What the rows are made from: a resume must match it (batch size: where classifier calls are cut).
  const identity = {
    input: resolve(inputFile),
    inputBytes: statSync(inputFile).size,
    normalize: opts.normalize === true,
    batchSize: Math.max(1, opts.batchSize ?? 32),
    labels,
    thresholds,
    classifier: opts.classifierIdentity ?? null,
  };
  const asked = opts.resume === true;
  const resume = asked || (opts.resume === "auto" && (await resumableOutput(outFile, identity)));
  const writer = await openResumableJsonlWriter(outFile, { resume, identity });
  if (writer.resumedRows > 0) {
    for await (const { value } of jsonLines(writer.partialPath)) tally.add(value as ScoredTweet);
    opts.log?.(`resuming after ${writer.resumedRows} tweets already in ${writer.partialPath}`);
  }
  const digest = new RowDigest(); // of the tweets written (and kept): saved with the rows
  const addToDigest = (t: TweetToScore) =>
    digest.add(t.id, JSON.stringify([t.created_at, t.author_id, t.text, t.input]));
  async function* todo(): AsyncGenerator<TweetToScore> {
    let consumed = 0;
    for await (const t of readTweetsToScore(inputFile, opts.normalize)) {
      consumed++;
      if (t.index < writer.resumedRows) {
        addToDigest(t);
        if (t.index === writer.resumedRows - 1)
          checkResumed(
            writer,
            digest,
            inputFile,
            asked ? undefined : `delete ${writer.partialPath} to start over`,
          );
        continue;
      }
      yield t;
    }
    checkResumedCount(writer, consumed, inputFile);
  }

  const write = async (batch: TweetToScore[], scored: Scored[]) => {
    if (scored.length !== batch.length) {
      throw new Error(`classifier returned ${scored.length} results for ${batch.length} texts`);
    }
    const rows: ScoredTweet[] = [];
    for (const [i, row] of batch.entries()) {
      const s = scored[i];
      if (s === undefined || s.probs.length !== labels.length || s.decisions.length !== labels.length) {
        throw new Error(`classifier returned a malformed result for tweet ${row.id}`);
      }
      const out: ScoredTweet = {
        id: row.id,
        created_at: row.created_at,
        author_id: row.author_id,
        text: row.text,
        ...scoredFields(labels, s.probs, s.decisions),
      };
      tally.add(out);
      rows.push(out);
      addToDigest(row);
    }
    await writer.append(rows, digest.value());
    const perS = (writer.rowCount - writer.resumedRows) / Math.max(0.001, (Date.now() - started) / 1000);
    opts.log?.(`scored ${tally.total} tweets (${perS.toFixed(1)}/s)`);
  };

  try {
    await scorer(todo(), write);
  } catch (err) {
    await writer.suspend(); // the rows so far stay in <out>.partial for a resume
    if (writer.rowCount === 0) {
      // Nothing to resume: leave no files behind.
      await rm(writer.partialPath, { force: true });
      if (writer.statePath) await rm(writer.statePath, { force: true });
    }
    if (opts.signal?.aborted) {
      throw new Error(
        `interrupted: ${writer.rowCount} tweets kept in ${writer.partialPath}; run the same command with --resume to continue`,
      );
    }
    throw err;
  }
  await writer.close();

  const summary = tally.summary(inputFile, outFile, thresholds);
  if (chartBase !== null) summary.chart = await writeScoreChart(summary, chartBase, opts.chartRender);
  if (summaryFile !== null) writeJsonAtomicSync(summaryFile, summary);
  return summary;
}

/** The summary's counts and top examples, built row by row (kept rows of a resume included). */
class ScoreTally {
  total = 0;
  private anyFlagged = 0;
  private readonly flagged: number[];
  private readonly top: TopExample[][];

  constructor(
    private readonly labels: readonly string[],
    private readonly topK: number,
  ) {
    this.flagged = labels.map(() => 0);
    this.top = labels.map(() => []);
  }

  add(row: ScoredTweet): void {
    for (const [j, label] of this.labels.entries()) {
      const d = row.decisions[label] === true;
      if (d) this.flagged[j] = (this.flagged[j] as number) + 1;
      keepTop(this.top[j] as TopExample[], this.topK, {
        id: row.id,
        prob: row.probs[label] as number,
        flagged: d,
        created_at: row.created_at,
        author_id: row.author_id,
        text: row.text,
      });
    }
    if (row.flagged.length > 0) this.anyFlagged++;
    this.total++;
  }

  summary(input: string, output: string, thresholds: readonly number[]): ScoreSummary {
    const byLabel = <T>(f: (j: number) => T): Record<string, T> =>
      Object.fromEntries(this.labels.map((l, j) => [l, f(j)]));
    const total = this.total;
    return {
      input,
      output,
      total,
      labels: [...this.labels],
      thresholds: byLabel((j) => thresholds[j] as number),
      flagged: byLabel((j) => this.flagged[j] as number),
      rate: byLabel((j) => (total > 0 ? (this.flagged[j] as number) / total : 0)),
      anyFlagged: this.anyFlagged,
      top: byLabel((j) => this.top[j] as TopExample[]),
    };
  }
}

/** Bar chart of how many tweets each label flags → `<outBase>.svg` and `<outBase>.png`. */
export async function writeScoreChart(
  summary: ScoreSummary,
  outBase: string,
  render?: RenderOptions,
): Promise<{ svg: string; png: string }> {
  const spec = barChart(
    summary.labels.map((label) => ({ category: label, value: summary.flagged[label] ?? 0 })),
    {
      title: "Flagged tweets per label",
      subtitle: `${summary.total} tweets scored, ${summary.anyFlagged} flagged for at least one label`,
      valueTitle: "tweets flagged",
    },
  );
  return writeChart(spec, outBase, render);
}

/** `summary.json` in the output's directory. */
export function defaultSummaryFile(outFile: string): string {
  return join(dirname(outFile), "summary.json");
}

/** Insert into a list kept sorted by prob (descending) and capped at k; earlier tweets win ties. */
function keepTop(list: TopExample[], k: number, ex: TopExample): void {
  if (k === 0) return;
  if (list.length === k && ex.prob <= (list[k - 1] as TopExample).prob) return;
  let i = list.length;
  while (i > 0 && (list[i - 1] as TopExample).prob < ex.prob) i--;
  list.splice(i, 0, ex);
  if (list.length > k) list.pop();
}

/** The summary as a few lines of text for the terminal. */
export function formatScoreSummary(s: ScoreSummary, examplesPerLabel = 3): string {
  // Display columns, not code units: a Japanese label is twice as wide as its length.
  const width = Math.max(5, ...s.labels.map(displayWidth));
  const lines = [`${s.total} tweets scored, ${s.anyFlagged} flagged for at least one label`];
  for (const label of s.labels) {
    const pct = ((s.rate[label] ?? 0) * 100).toFixed(1);
    lines.push(
      `  ${label}${" ".repeat(width - displayWidth(label))}  ${String(s.flagged[label]).padStart(6)} flagged (${pct}%)  threshold ${(s.thresholds[label] ?? 0).toFixed(3)}`,
    );
    for (const ex of (s.top[label] ?? []).slice(0, examplesPerLabel)) {
      const oneLine = ex.text.replace(/\s+/g, " ");
      const short = [...oneLine].length > 60 ? `${[...oneLine].slice(0, 60).join("")}…` : oneLine;
      lines.push(`      ${ex.prob.toFixed(3)}  ${ex.id}  ${short}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
