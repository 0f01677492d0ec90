// `npm run bench:train`: training and prediction throughput of the real workflow (tokenizer,
// length-bucketed batches of variable-length posts, the trainer's step graph) on a
// BERT-base-shaped model (2 layers, hidden 768, 12 heads, FFN 3072, LoRA r=8 on all linears),
// with and without length bucketing, measured in the same run. Results: one JSON line on stdout
// and bench/results/train.json.
//
// Data: the bundled demo posts (short) plus the LLM-jp-v2-shaped fixture texts from test/fixtures
// (12–400 characters) when present, so lengths vary as in real moderation data.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createRng } from "../src/data/random.js";
import { writeRandomCheckpoint } from "../src/models/random-checkpoint.js";
import { loadClassifier } from "../src/predict/classifier.js";
import { bucketedBatches, naiveBatches, paddingStats } from "../src/run/batching.js";
import { encodeTexts } from "../src/run/encode.js";
import { buildCharTokenizer } from "../src/tokenizers/build.js";
import { train } from "../src/train/trainer.js";

const ROWS = Number(process.env.BENCH_ROWS ?? 384);
const MAX_LENGTH = 256;
const BATCH = 8;

function jsonl(file: string): Record<string, unknown>[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "toxlora-bench-train-"));
  try {
    const demo = jsonl(new URL("../assets/demo/toxicity-ja.jsonl", import.meta.url).pathname);
    const fixture = resolve(process.cwd(), "test/fixtures/llmjp-v2-seed-stats.jsonl");
    const long = existsSync(fixture) ? jsonl(fixture) : [];
    const rng = createRng(1);
    const pool = rng.shuffle([...demo, ...long]).slice(0, ROWS);
    const data = join(dir, "data.jsonl");
    writeFileSync(data, pool.map((r) => `${JSON.stringify(r)}\n`).join(""));
    const texts = pool.map((r) => String(r.text));

    const model = join(dir, "model");
    const tok = await buildCharTokenizer(texts, { outDir: model, style: "bert" });
    await writeRandomCheckpoint(model, {
      arch: "bert",
      vocabSize: tok.vocabSize,
      hidden: 768,
      layers: 2,
      heads: 12,
      intermediate: 3072,
      maxPositions: 512,
      dropout: 0,
      seed: 1,
    });

    // Padding waste of the two batchings on these lengths.
    const lengths = encodeTexts(tok.tokenizer, texts, MAX_LENGTH).map((x) => x.length);
    const bucketed = paddingStats(bucketedBatches(lengths, { batchSize: BATCH, seed: 1 }), lengths);
    const naive = paddingStats(naiveBatches(lengths.length, { batchSize: BATCH, seed: 1 }), lengths);

    const runs: Record<string, { tokensPerS: number; seconds: number; steps: number }> = {};
    for (const bucketing of [true, false]) {
      const out = join(dir, `run-${bucketing}`);
      const r = await train(
        {
          model,
          data,
          epochs: 1,
          batchSize: BATCH,
          maxLength: MAX_LENGTH,
          loraR: 8,
          loraAlpha: 16,
          loraDropout: 0,
          testRatio: 0.05,
          validRatio: 0.05,
          bucketing,
          out,
        },
        { progress: "lines" },
      );
      const steps = readFileSync(join(out, "metrics.jsonl"), "utf8")
        .split("\n")
        .filter((l) => l.includes('"type":"step"'))
        .map((l) => JSON.parse(l) as { tokens: number });
      const tokens = steps.reduce((s, x) => s + x.tokens, 0);
      runs[bucketing ? "bucketed" : "naive"] = {
        tokensPerS: tokens / r.trainSeconds,
        seconds: r.trainSeconds,
        steps: steps.length,
      };
    }

    // Prediction throughput (merged LoRA, bucketed batches of 32).
    const clf = await loadClassifier(join(dir, "run-true"), { batchSize: 32 });
    await clf.probs(texts.slice(0, 32)); // warm-up
    const t0 = process.hrtime.bigint();
    await clf.probs(texts);
    const predictSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await clf.close();
    const realTokens = lengths.reduce((a, b) => a + b, 0);

    const result = {
      bench: "train",
      model: "BERT-base-shaped: 2 layers, hidden 768, 12 heads, FFN 3072, LoRA r=8 all-linear",
      rows: pool.length,
      maxLength: MAX_LENGTH,
      batchSize: BATCH,
      length: { mean: realTokens / lengths.length, max: Math.max(...lengths), min: Math.min(...lengths) },
      tokens_per_s_train: +runs.bucketed.tokensPerS.toFixed(1),
      tokens_per_s_train_no_bucketing: +runs.naive.tokensPerS.toFixed(1),
      bucketing_speedup: +(runs.bucketed.tokensPerS / runs.naive.tokensPerS).toFixed(2),
      tokens_per_s_predict: +(realTokens / predictSeconds).toFixed(1),
      texts_per_s_predict: +(texts.length / predictSeconds).toFixed(1),
      padding_waste_bucketed: +bucketed.wasteRatio.toFixed(3),
      padding_waste_naive: +naive.wasteRatio.toFixed(3),
      padded_tokens_saved_by_bucketing: naive.paddedTokens - bucketed.paddedTokens,
      train_seconds: { bucketed: runs.bucketed.seconds, naive: runs.naive.seconds },
      date: new Date().toISOString(),
    };
    console.log(JSON.stringify(result));
    mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
    writeFileSync(new URL("./results/train.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
