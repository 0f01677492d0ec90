// Length-bucketed batching: put texts of similar token length in the same batch, so a batch of short
// posts is not padded to the length of one long document.
//
// The recipe (the "sortish sampler" of fairseq / Hugging Face `group_by_length`, written from scratch):
//   1. shuffle all row indices (seeded);
//   2. cut them into chunks of `chunkFactor × batchSize` rows;
//   3. sort each chunk by length (longest first) and cut it into batches;
//   4. shuffle the order of all batches (seeded).
// Step 1 keeps every epoch's batches random; step 3 makes lengths inside a batch similar; step 4 stops
// the model from seeing the batches in a length-sorted order inside each chunk.
import { createRng } from "../data/random.js";

/** Options of {@link bucketedBatches}. */
export interface BucketOptions {
  /** Rows per batch (the last batch of each chunk may be smaller unless `dropLast`). */
  batchSize: number;
  /** Seed of the shuffles; use a different one per epoch (e.g. `deriveSeed(seed, epoch)`). */
  seed: number;
  /** Chunk size in batches (default 50): larger → less padding, less randomness. */
  chunkFactor?: number;
  /**
   * Shuffle rows and batches (default true). With `false` (evaluation, prediction) chunks follow the
   * input order and batches keep their order: the result is deterministic without a seed, and every
   * row still appears once.
   */
  shuffle?: boolean;
  /** Drop batches smaller than `batchSize` (default false). */
  dropLast?: boolean;
}

/** Padding cost of a batching. */
export interface PaddingStats {
  batches: number;
  /** Sum of the real lengths of the rows in the batches. */
  realTokens: number;
  /** Tokens actually computed: Σ over batches of (rows × longest row). */
  paddedTokens: number;
  /** paddedTokens − realTokens. */
  paddingTokens: number;
  /** paddingTokens / paddedTokens (0 when there is nothing): the fraction of compute wasted on padding. */
  wasteRatio: number;
}

function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize <= 0) {
    throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
  }
}

function checkLengths(lengths: readonly number[]): void {
  lengths.forEach((len, i) => {
    if (!Number.isInteger(len) || len < 0)
      throw new Error(`length of row ${i} must be a non-negative integer, got ${len}`);
  });
}

/** Cut `indices` into consecutive batches of `batchSize`. */
function cut(indices: readonly number[], batchSize: number, dropLast: boolean): number[][] {
  const out: number[][] = [];
  for (let start = 0; start < indices.length; start += batchSize) {
    const batch = indices.slice(start, start + batchSize);
    if (dropLast && batch.length < batchSize) continue;
    out.push(batch);
  }
  return out;
}

/**
 * Length-bucketed batches of row indices.
 * @param lengths - token length of each row, already truncated to the model's max length
 * @returns batches of indices into `lengths`; every row appears exactly once (unless `dropLast`)
 * @example
 * const batches = bucketedBatches(tokenLengths, { batchSize: 8, seed: deriveSeed(42, epoch) });
 */
export function bucketedBatches(lengths: readonly number[], options: BucketOptions): number[][] {
  const { batchSize, seed, chunkFactor = 50, shuffle = true, dropLast = false } = options;
  checkBatchSize(batchSize);
  checkLengths(lengths);
  if (!Number.isInteger(chunkFactor) || chunkFactor <= 0) {
    throw new Error(`chunkFactor must be a positive integer, got ${chunkFactor}`);
  }
  const rng = createRng(seed);
  const order = lengths.map((_, i) => i);
  if (shuffle) rng.shuffle(order);

  const chunkSize = chunkFactor * batchSize;
  const batches: number[][] = [];
  for (let start = 0; start < order.length; start += chunkSize) {
    const chunk = order.slice(start, start + chunkSize);
    // Longest first. Array#sort is stable, so ties keep the chunk order and the result depends only
    // on the seed.
    chunk.sort((a, b) => (lengths[b] as number) - (lengths[a] as number));
    batches.push(...cut(chunk, batchSize, dropLast));
  }
  if (shuffle) rng.shuffle(batches);
  return batches;
}

/**
 * Plain batches (the baseline bucketing is compared with): rows shuffled with `seed` (or in input
 * order when `shuffle` is false) and cut into batches of `batchSize`.
 */
export function naiveBatches(
  rowCount: number,
  options: { batchSize: number; seed: number; shuffle?: boolean; dropLast?: boolean },
): number[][] {
  checkBatchSize(options.batchSize);
  if (!Number.isInteger(rowCount) || rowCount < 0)
    throw new Error(`rowCount must be a non-negative integer, got ${rowCount}`);
  const order = Array.from({ length: rowCount }, (_, i) => i);
  if (options.shuffle ?? true) createRng(options.seed).shuffle(order);
  return cut(order, options.batchSize, options.dropLast ?? false);
}

/**
 * Padding cost of `batches` when each batch is padded to its longest row.
 * @example
 * const naive = paddingStats(naiveBatches(n, { batchSize: 8, seed: 1 }), lengths);
 * const bucketed = paddingStats(bucketedBatches(lengths, { batchSize: 8, seed: 1 }), lengths);
 * console.log(`padding ${(naive.wasteRatio * 100).toFixed(1)}% → ${(bucketed.wasteRatio * 100).toFixed(1)}%`);
 */
export function paddingStats(
  batches: readonly (readonly number[])[],
  lengths: readonly number[],
): PaddingStats {
  let realTokens = 0;
  let paddedTokens = 0;
  for (const batch of batches) {
    let longest = 0;
    for (const i of batch) {
      const len = lengths[i];
      if (len === undefined)
        throw new Error(`batch refers to row ${i}, but there are ${lengths.length} lengths`);
      realTokens += len;
      if (len > longest) longest = len;
    }
    paddedTokens += longest * batch.length;
  }
  const paddingTokens = paddedTokens - realTokens;
  return {
    batches: batches.length,
    realTokens,
    paddedTokens,
    paddingTokens,
    wasteRatio: paddedTokens === 0 ? 0 : paddingTokens / paddedTokens,
  };
}
