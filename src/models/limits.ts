// Sequence-length limits. A model reads at most as many tokens as its position embeddings (or
// rotary tables) cover; a longer `maxLength` fails deep inside onnxruntime ("Attempting to broadcast
// … 128 by 149"), so every entry point (train, predict, eval, serve, export) fits it here first.
import type { HfModelConfig } from "../io/hf-config.js";
import type { Tokenizer } from "../tokenizers/tokenizer.js";

/** Tokens the tokenizer adds to every text ([CLS] and [SEP], BOS…). */
export function specialTokenCount(tok: Pick<Tokenizer, "specialPrefix" | "specialSuffix">): number {
  return tok.specialPrefix.length + tok.specialSuffix.length;
}

/** Longest sequence the model's position embeddings cover, in tokens. */
export function maxSequenceLength(cfg: HfModelConfig): number {
  if (cfg.family === "bert" && cfg.roberta_positions) {
    // RoBERTa positions start at pad_token_id + 1.
    return cfg.max_position_embeddings - (cfg.pad_token_id ?? 1) - 1;
  }
  return cfg.max_position_embeddings;
}

/** A max length fitted to the model, and the notice to show when it was lowered. */
export interface FittedLength {
  maxLength: number;
  notice?: string;
}

/**
 * `requested` tokens per text, lowered to what the model reads (with a notice naming both numbers).
 * Throws when it cannot hold one token besides the tokenizer's `specialTokens` ([CLS] … [SEP]).
 * @param what how the user set it, for messages (e.g. "--max-length", "the run's maxLength")
 */
export function fitMaxLength(
  requested: number,
  cfg: HfModelConfig,
  specialTokens: number,
  what = "--max-length",
): FittedLength {
  if (!Number.isInteger(requested) || requested < specialTokens + 1) {
    throw new Error(
      `${what} ${requested} is too short: the tokenizer adds ${specialTokens} special tokens, ` +
        `so at least ${specialTokens + 1} are needed`,
    );
  }
  const limit = maxSequenceLength(cfg);
  if (requested <= limit) return { maxLength: requested };
  return {
    maxLength: limit,
    notice: `${what} ${requested} is more than the model reads (max_position_embeddings: ${limit} tokens); using ${limit}`,
  };
}
