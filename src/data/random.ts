// A small seeded pseudo-random generator (mulberry32), so that balancing, splitting and per-epoch
// re-sampling give the same result for the same seed on every machine. Math.random cannot be seeded.

/** A seeded random source. All methods advance the same 32-bit state. */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[];
  /** One uniformly chosen element (the array must not be empty). */
  pick<T>(items: readonly T[]): T;
}

/** Folds any finite number (negative, fractional, large) into a 32-bit unsigned seed. */
function toSeed32(seed: number): number {
  if (!Number.isFinite(seed)) throw new Error(`seed must be a finite number, got ${seed}`);
  // Keep the integer part and the high bits of large seeds: seeds 1 and 2**32 + 1 should differ.
  const int = Math.trunc(seed);
  return (int ^ Math.floor(int / 2 ** 32)) >>> 0;
}

/** Creates a mulberry32 generator. Same seed → same sequence. */
export function createRng(seed: number): Rng {
  let state = toSeed32(seed);
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`int(n) needs a positive integer, got ${n}`);
    return Math.floor(next() * n);
  };
  return {
    next,
    int,
    shuffle<T>(items: T[]): T[] {
      for (let i = items.length - 1; i > 0; i--) {
        const j = int(i + 1);
        const tmp = items[i] as T;
        items[i] = items[j] as T;
        items[j] = tmp;
      }
      return items;
    },
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new Error("pick() from an empty array");
      return items[int(items.length)] as T;
    },
  };
}

/**
 * Derives an independent seed from a base seed and a stream number (e.g. the epoch), so that
 * epoch 2 of seed 42 does not replay epoch 1 of seed 43. Uses a 32-bit integer hash mix.
 */
export function deriveSeed(seed: number, stream: number): number {
  let h = (toSeed32(seed) ^ Math.imul(toSeed32(stream) + 0x9e3779b9, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}
