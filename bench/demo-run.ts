// A LoRA run trained on the bundled demo posts, on a random BERT of a given size with a character
// tokenizer: what `bench:serve` and `bench:cluster` score, built once here.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeRandomCheckpoint } from "../src/models/random-checkpoint.js";
import { buildCharTokenizer } from "../src/tokenizers/build.js";
import { train } from "../src/train/trainer.js";

const DEMO = fileURLToPath(new URL("../assets/demo/toxicity-ja.jsonl", import.meta.url));

/** The demo posts' texts. */
export const demoTexts: string[] = readFileSync(DEMO, "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => String((JSON.parse(l) as { text: string }).text));

export interface BertSize {
  hidden: number;
  layers: number;
  heads: number;
  ffn: number;
}

/** Trains a run of the given size on the demo data (1 epoch) and returns its directory. */
export async function trainDemoRun(dir: string, size: BertSize): Promise<string> {
  const model = join(dir, "model");
  const tok = await buildCharTokenizer(demoTexts, { outDir: model, style: "bert" });
  await writeRandomCheckpoint(model, {
    arch: "bert",
    vocabSize: tok.vocabSize,
    hidden: size.hidden,
    layers: size.layers,
    heads: size.heads,
    intermediate: size.ffn,
    maxPositions: 512,
    dropout: 0,
    seed: 1,
  });
  const r = await train(
    {
      model,
      data: DEMO,
      preset: "llmjp-toxicity",
      epochs: 1,
      batchSize: 16,
      maxLength: 128,
      loraR: 8,
      loraAlpha: 16,
      out: join(dir, "run"),
    },
    { progress: "quiet" },
  );
  return r.runDir;
}
