// Shared by workflow tests: a tiny random model folder with a character tokenizer built from texts.
import { readFileSync } from "node:fs";
import { writeRandomCheckpoint } from "../../src/models/random-checkpoint.js";
import { buildCharTokenizer } from "../../src/tokenizers/build.js";

export const DEMO_DATA = new URL("../../assets/demo/toxicity-ja.jsonl", import.meta.url).pathname;

export function demoTexts(): string[] {
  return readFileSync(DEMO_DATA, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { text: string }).text);
}

/** A BERT- or Llama-shaped random checkpoint (hidden 32) plus a char tokenizer, in `dir`. */
export async function tinyModel(
  dir: string,
  texts: string[],
  arch: "bert" | "llama" = "bert",
  opts: { hidden?: number; layers?: number; seed?: number; dropout?: number; maxPositions?: number } = {},
): Promise<string> {
  const tok = await buildCharTokenizer(texts, { outDir: dir, style: arch === "bert" ? "bert" : "llama" });
  await writeRandomCheckpoint(dir, {
    arch,
    vocabSize: tok.vocabSize,
    hidden: opts.hidden ?? 32,
    layers: opts.layers ?? 2,
    heads: 4,
    intermediate: 64,
    maxPositions: opts.maxPositions ?? 512,
    padTokenId: 0,
    bosTokenId: arch === "llama" ? 2 : undefined,
    eosTokenId: arch === "llama" ? 3 : undefined,
    seed: opts.seed ?? 1,
    dropout: opts.dropout,
  });
  return dir;
}
