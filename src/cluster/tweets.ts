// `toxlora tweets score --queue`: the rows, summary and chart of `tweets score`, with the scores
// coming from the cluster's workers. Workers cut classifier calls exactly where `tweets score`
// does (every `batchSize` tweets, with the classifier's default forward batch), so the scored file
// is byte-identical.

import { resolve } from "node:path";
import { DEFAULT_BATCH_SIZE, readRunConfig, readThresholds } from "../predict/classifier.js";
import type { QuantLoadOptions } from "../quant/weights.js";
import {
  type ScoreOptions,
  type ScoreSummary,
  scoreTweetsWith,
  type TweetToScore,
} from "../sources/score.js";
import { type ClusterProgress, scoreOnQueue } from "./coordinator.js";
import { runFingerprint } from "./fingerprint.js";
import { jobNamespace, runQuantSpec } from "./jobs.js";
import { queueClassifierIdentity } from "./predict.js";
import { checkRedis, type RedisTarget } from "./redis.js";

/**
 * `resume` as in {@link ScoreOptions} (default "auto": the same command continues its partial
 * output); `quantize` etc. as for `predict --queue`.
 */
export interface QueueTweetsOptions extends ScoreOptions, QuantLoadOptions {
  redis: RedisTarget;
  run: string;
  /** Rows per job (default 2000). */
  chunkSize?: number;
  /** Tries per chunk before the run stops (default 3). */
  maxAttempts?: number;
  /** Chunks in Redis at once (default 16). */
  inFlight?: number;
  onProgress?: (p: ClusterProgress) => void;
}

/** Scores a tweets JSONL on the queue; same output files as {@link scoreTweets}. */
export async function scoreTweetsOnQueue(
  inputFile: string,
  outFile: string,
  opts: QueueTweetsOptions,
): Promise<ScoreSummary> {
  const run = await readRunConfig(opts.run);
  const quant = runQuantSpec(run, opts, opts.run); // bad options are refused before Redis is asked
  await checkRedis(opts.redis);
  const thresholds = await readThresholds(opts.run, run.labels);
  const fingerprint = await runFingerprint(opts.run);
  const classifierIdentity = queueClassifierIdentity(opts.run, fingerprint, quant);
  const chunkSize = opts.chunkSize ?? 2000;
  const block = Math.max(1, opts.batchSize ?? 32);
  const ns = jobNamespace({
    kind: "tweets",
    classifier: classifierIdentity,
    input: resolve(inputFile),
    out: resolve(outFile),
    normalize: opts.normalize === true,
    chunkSize,
    block,
  });
  return scoreTweetsWith(
    async (tweets, write) => {
      const lines = new Map<number, number>();
      async function* records(): AsyncGenerator<{ index: number; text: string; tweet: TweetToScore }> {
        for await (const tweet of tweets) {
          lines.set(tweet.index, tweet.line);
          yield { index: tweet.index, text: tweet.input, tweet };
        }
      }
      const r = await scoreOnQueue(
        records(),
        async (recs, scored) => {
          await write(
            recs.map((x) => x.tweet),
            scored,
          );
          for (const x of recs) lines.delete(x.index);
        },
        {
          redis: opts.redis,
          fingerprint,
          quant,
          ns,
          chunkSize,
          block,
          batchSize: DEFAULT_BATCH_SIZE,
          maxAttempts: opts.maxAttempts,
          inFlight: opts.inFlight,
          signal: opts.signal,
          onProgress: opts.onProgress,
          log: opts.log,
          describe: (i) => {
            const line = lines.get(i);
            return line === undefined ? undefined : `${inputFile}:${line}`;
          },
        },
      );
      if (r.interrupted) throw new Error("scoring interrupted");
    },
    run.labels,
    thresholds,
    inputFile,
    outFile,
    { ...opts, resume: opts.resume ?? "auto", classifierIdentity },
  );
}
