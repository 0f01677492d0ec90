// The llm-jp-3-1.8b-shaped random checkpoint and long synthetic posts that the scale benches
// (`bench:trainer-scale`, `bench:quantize`, `bench/quantize-profile.ts`) train on, and the run they
// train, written once here so all of them measure the same run.
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeSyntheticCheckpoint } from "../src/models/synthetic.js";

const SPM = resolve(process.cwd(), "test/fixtures/tokenizers/llm-jp/llm-jp-tokenizer-100k.ver3.0b1.model");

/** A random BF16 Llama in llm-jp-3-1.8b's shape (with `layers` layers) and the real llm-jp-3 tokenizer. */
export async function writeLlmJpScaleModel(dir: string, layers: number): Promise<void> {
  await writeSyntheticCheckpoint(dir, {
    family: "llama",
    hidden: 2048,
    layers,
    heads: 16,
    kvHeads: 16,
    intermediate: 7168,
    vocab: 99_584,
    maxPositions: 4096,
    dtype: "BF16",
    config: { rms_norm_eps: 1e-5, bos_token_id: 1, eos_token_id: 2, pad_token_id: 2 },
  });
  copyFileSync(SPM, join(dir, "tokenizer.model"));
}

/** `rows` long posts (every row fills a 512-token sequence) with two labels `a`, `b`. */
export function writeLongPosts(file: string, rows: number): void {
  const line = "このアニメの感想を書きます。作画も音楽も素晴らしいが、脚本には不満が残る。".repeat(40);
  writeFileSync(
    file,
    Array.from({ length: rows }, (_, i) =>
      JSON.stringify({ id: `r${i}`, text: `${i} ${line}`, a: i % 2 ? "yes" : "no", b: i % 3 ? "no" : "yes" }),
    ).join("\n"),
  );
}

/** The run every scale bench trains: batch 1 × `maxLength`, two labels, one epoch, per-label-softmax. */
export function llmJpScaleRun(model: string, data: string, out: string, maxLength: number) {
  return {
    model,
    data,
    labels: ["a", "b"],
    testRatio: 0.25,
    validRatio: 0.25,
    epochs: 1,
    batchSize: 1,
    maxLength,
    head: "per-label-softmax" as const,
    out,
  };
}

/** Seconds of each training step of a finished run, from its metrics.jsonl. */
export function stepSeconds(runDir: string): number[] {
  return readFileSync(join(runDir, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((m) => m.type === "step")
    .map((m) => m.tokens / m.tokensPerS);
}
