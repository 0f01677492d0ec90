// Turning texts into model feeds: token ids (truncated to max length, special tokens kept) and
// right-padded batches with attention masks. Shared by the trainer and the predictor.
import { type OrtTensor, type Session, tensor } from "../engine/runtime.js";
import type { Tokenizer } from "../tokenizers/tokenizer.js";
import { bucketedBatches } from "./batching.js";

/** Token ids of each text, truncated to `maxLength` (special tokens included and kept). */
export function encodeTexts(tok: Tokenizer, texts: readonly string[], maxLength: number): number[][] {
  return encodeTextsCapped(tok, texts, maxLength).ids;
}

/** {@link encodeTexts}, also saying which texts were longer than `maxLength` tokens (and cut). */
export function encodeTextsCapped(
  tok: Tokenizer,
  texts: readonly string[],
  maxLength: number,
): { ids: number[][]; truncated: boolean[] } {
  const ids: number[][] = [];
  const truncated: boolean[] = [];
  for (const t of texts) {
    const e = encodeCapped(tok, t, maxLength);
    // An empty text still needs one position so that pooling and attention have something to read.
    ids.push(e.ids.length > 0 ? e.ids : [tok.padId]);
    truncated.push(e.truncated);
  }
  return { ids, truncated };
}

/** Characters tokenized at first per token kept: generous, and grown when too few tokens come out. */
const CHARS_PER_TOKEN = 8;
/** Tokens beyond the kept ones that must come out of a cut text, so the cut cannot change the kept ones. */
const CUT_MARGIN = 16;

/**
 * `tok.encode(text, { maxLength })` without tokenizing all of a long text: only a prefix that
 * yields more tokens than are kept (by a margin, so where it is cut does not matter) is tokenized.
 * A 50 MB line therefore costs what its first few thousand characters cost.
 */
export function encodeCapped(
  tok: Tokenizer,
  text: string,
  maxLength: number,
): { ids: number[]; truncated: boolean } {
  const prefix = tok.specialPrefix;
  const suffix = tok.specialSuffix;
  const room = maxLength - prefix.length - suffix.length;
  if (room < 1) return { ids: tok.encode(text, { maxLength }), truncated: false }; // the tokenizer's error
  let cut = (maxLength + CUT_MARGIN) * CHARS_PER_TOKEN;
  for (;;) {
    const whole = cut >= text.length;
    // Never between the two halves of a surrogate pair.
    const end = whole ? text.length : /[\uD800-\uDBFF]/.test(text[cut - 1] ?? "") ? cut - 1 : cut;
    const body = tok.encode(whole ? text : text.slice(0, end), { addSpecialTokens: false });
    if (whole || body.length >= room + CUT_MARGIN) {
      return { ids: [...prefix, ...body.slice(0, room), ...suffix], truncated: !whole || body.length > room };
    }
    cut *= 4;
  }
}

export interface BatchFeeds {
  feeds: Record<string, OrtTensor>;
  /** Real (non-pad) tokens in the batch. */
  tokens: number;
  /** Batch rows × padded length. */
  padded: number;
}

/**
 * Feeds for the rows `indices` of `ids`: input_ids and attention_mask (int64, right padding with
 * `padId`), token_type_ids (zeros) when `withTokenTypes`, and float labels when given.
 */
export function batchFeeds(
  ids: readonly (readonly number[])[],
  indices: readonly number[],
  padId: number,
  withTokenTypes: boolean,
  labels?: readonly (readonly number[])[],
): BatchFeeds {
  const b = indices.length;
  const t = Math.max(1, ...indices.map((i) => ids[i].length));
  const inputIds = new BigInt64Array(b * t).fill(BigInt(padId));
  const mask = new BigInt64Array(b * t);
  let tokens = 0;
  indices.forEach((row, r) => {
    const seq = ids[row];
    for (let k = 0; k < seq.length; k++) {
      inputIds[r * t + k] = BigInt(seq[k]);
      mask[r * t + k] = 1n;
    }
    tokens += seq.length;
  });
  const feeds: Record<string, OrtTensor> = {
    input_ids: tensor("int64", inputIds, [b, t]),
    attention_mask: tensor("int64", mask, [b, t]),
  };
  if (withTokenTypes) feeds.token_type_ids = tensor("int64", new BigInt64Array(b * t), [b, t]);
  if (labels) {
    const width = labels[indices[0]]?.length ?? 0;
    const lab = new Float32Array(b * width);
    indices.forEach((row, r) => {
      lab.set(labels[row], r * width);
    });
    feeds.labels = tensor("float32", lab, [b, width]);
  }
  return { feeds, tokens, padded: b * t };
}

export interface ScoreOptions {
  padId: number;
  withTokenTypes: boolean;
  batchSize: number;
  /** Fed with every batch (e.g. the current trainable parameters). */
  extraFeeds?: Record<string, OrtTensor>;
  /** 0/1 labels per row: also averages the graph's "loss" output over the rows. */
  labels?: readonly (readonly number[])[];
}

/**
 * Runs a graph with a "probs" output ([batch, labels]) over token-id rows in length-bucketed
 * batches and returns the probabilities in input order (and the mean loss when labels are given).
 */
export async function scoreRows(
  session: Session,
  ids: readonly (readonly number[])[],
  opts: ScoreOptions,
): Promise<{ probs: number[][]; loss: number }> {
  const probs: number[][] = new Array(ids.length);
  let lossSum = 0;
  const batches = bucketedBatches(
    ids.map((x) => x.length),
    { batchSize: opts.batchSize, seed: 0, shuffle: false },
  );
  for (const batch of batches) {
    const { feeds } = batchFeeds(ids, batch, opts.padId, opts.withTokenTypes, opts.labels);
    const out = await session.run({ ...feeds, ...opts.extraFeeds });
    const p = out.probs.data as Float32Array;
    const width = out.probs.dims[1] as number;
    batch.forEach((row, r) => {
      probs[row] = Array.from(p.subarray(r * width, (r + 1) * width));
    });
    if (opts.labels) lossSum += Number(out.loss.data[0]) * batch.length;
  }
  return { probs, loss: opts.labels && ids.length ? lossSum / ids.length : Number.NaN };
}
