// The serving order: most-uncertain posts first (closest to the run's thresholds), with a share
// drawn at random so the labelled set also supports unbiased estimates; without a run, all random.
// And a cheap near-duplicate test, so an annotator is not shown the same post twice in a row.
import { createRng } from "../data/random.js";

/** How unsure the model is about a post: the smallest |p − threshold| over labels (0 = on the line). */
export function uncertaintyMargin(probs: readonly number[], thresholds: readonly number[]): number {
  let margin = Number.POSITIVE_INFINITY;
  probs.forEach((p, j) => {
    margin = Math.min(margin, Math.abs(p - (thresholds[j] ?? 0.5)));
  });
  return margin;
}

export interface PlanCandidate {
  post: number;
  /** From {@link uncertaintyMargin}; undefined without a run. */
  margin?: number;
}

export interface PlannedPost {
  post: number;
  pick: "uncertain" | "random";
}

/**
 * Orders posts for serving. Each slot is, with probability `random`, the next post of a seeded
 * shuffle, otherwise the most uncertain post not yet placed (ties by post id); posts without a
 * margin are all random. Same inputs and seed → same order, so a restarted server serves alike.
 */
export function planOrder(
  candidates: readonly PlanCandidate[],
  opts: { random: number; seed: number },
): PlannedPost[] {
  const rng = createRng(opts.seed);
  const shuffled = rng.shuffle(candidates.map((c) => c.post));
  const scored = candidates.filter((c) => c.margin !== undefined);
  if (scored.length === 0) return shuffled.map((post) => ({ post, pick: "random" }));
  const uncertain = [...scored].sort(
    (a, b) => (a.margin as number) - (b.margin as number) || a.post - b.post,
  );
  const placed = new Set<number>();
  const out: PlannedPost[] = [];
  let u = 0;
  let r = 0;
  while (out.length < candidates.length) {
    while (u < uncertain.length && placed.has((uncertain[u] as PlanCandidate).post)) u++;
    while (r < shuffled.length && placed.has(shuffled[r] as number)) r++;
    const takeRandom = u >= uncertain.length || rng.next() < opts.random;
    const post = takeRandom ? (shuffled[r] as number) : (uncertain[u] as PlanCandidate).post;
    placed.add(post);
    out.push({ post, pick: takeRandom ? "random" : "uncertain" });
  }
  return out;
}

/** Text reduced to what makes two posts the same post: NFKC, lower case, no URLs/mentions/spaces/punctuation. */
export function normalizeForDuplicates(text: string): string {
  return text
    .normalize("NFKC")
    .toLowerCase()
    .replace(/https?:\/\/\S+/g, "")
    .replace(/@\w+/g, "")
    .replace(/[\s\p{P}\p{S}]+/gu, "");
}

function bigrams(s: string): Set<string> {
  const chars = [...s];
  const out = new Set<string>();
  if (chars.length === 1) out.add(chars[0] as string);
  for (let i = 0; i + 1 < chars.length; i++) out.add(`${chars[i]}${chars[i + 1]}`);
  return out;
}

/**
 * Whether two posts are near-duplicates: the Jaccard similarity of their normalized character
 * bigrams is at least `threshold` (retweets, copy-pasted spam with a changed emoji or URL).
 */
export function nearDuplicate(a: string, b: string, threshold = 0.7): boolean {
  const x = bigrams(normalizeForDuplicates(a));
  const y = bigrams(normalizeForDuplicates(b));
  if (x.size === 0 || y.size === 0) return x.size === y.size;
  let both = 0;
  for (const g of x) if (y.has(g)) both++;
  return both / (x.size + y.size - both) >= threshold;
}
