// Pieces every architecture's self-attention shares: additive masks (padding, causal, sliding
// window), rotary position embeddings (Hugging Face's rotate_half convention) and scaled
// dot-product attention with grouped-query heads. Shapes: batch B, sequence T, heads h.

import {
  add,
  and,
  arange,
  concat,
  dropout,
  equal,
  type Graph,
  gather,
  greater,
  matmul,
  mul,
  neg,
  not,
  reshape,
  scalar,
  softmax,
  split,
  sub,
  type Tensor,
  transpose,
  unsqueeze,
  where,
} from "../engine/index.js";

/** torch.finfo(float32).min: what Hugging Face adds to masked attention scores. */
export const F32_MIN = -3.4028234663852886e38;

/** Where `allowed` [.., T, T] or [B,1,1,T] is false, F32_MIN; elsewhere 0. */
function biasFrom(allowed: Tensor): Tensor {
  const g = allowed.graph;
  return where(allowed, scalar(g, 0), scalar(g, F32_MIN));
}

/** Keys that are real tokens: attention_mask [B, T] == 1, as bool [B, 1, 1, T]. */
function keyIsToken(attentionMask: Tensor): Tensor {
  const g = attentionMask.graph;
  return unsqueeze(equal(attentionMask, scalar(g, 1, "int64")), [1, 2]);
}

/** Query index i [T, 1] and key index j [1, T] as int64. */
function positions(g: Graph): { i: Tensor; j: Tensor } {
  const r = arange(g, "seq");
  return { i: unsqueeze(r, [1]), j: unsqueeze(r, [0]) };
}

/** Padding mask for bidirectional encoders: bias [B, 1, 1, T] (0 for tokens, F32_MIN for pads). */
export function paddingMaskBias(attentionMask: Tensor): Tensor {
  return biasFrom(keyIsToken(attentionMask));
}

/** Causal + padding mask for decoders: bias [B, 1, T, T]; query i sees keys j <= i that are tokens. */
export function causalMaskBias(attentionMask: Tensor): Tensor {
  const g = attentionMask.graph;
  const { i, j } = positions(g);
  return biasFrom(and(not(greater(j, i)), keyIsToken(attentionMask)));
}

/** Padding mask restricted to a window: query i sees token keys j with |i - j| <= halfWindow. */
export function slidingMaskBias(attentionMask: Tensor, halfWindow: number): Tensor {
  const g = attentionMask.graph;
  const { i, j } = positions(g);
  const w = scalar(g, halfWindow, "int64");
  const near = and(not(greater(sub(i, j), w)), not(greater(sub(j, i), w)));
  return biasFrom(and(near, keyIsToken(attentionMask)));
}

// ---- rotary position embeddings --------------------------------------------------------------

export interface RopeTables {
  /** cos and sin of position · inv_freq, each [T, headDim] for the graph's sequence length. */
  cos: Tensor;
  sin: Tensor;
}

/**
 * cos/sin tables of rotary embeddings for positions 0..maxPositions-1, computed the way
 * transformers does in float32 (inv_freq = 1 / theta^(2i/d) rounded to float32, angle =
 * position · inv_freq rounded to float32, then cos/sin), so long positions match too. The graph
 * gathers the rows 0..T-1 (position_ids = arange(T), transformers' default).
 *
 * @param linearFactor rope_scaling {rope_type: "linear", factor}: inv_freq / factor
 */
export function ropeTables(
  g: Graph,
  name: string,
  headDim: number,
  theta: number,
  maxPositions: number,
  linearFactor = 1,
): RopeTables {
  const half = headDim / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const e = Math.fround((2 * i) / headDim);
    invFreq[i] = Math.fround(1 / Math.fround(Math.fround(theta) ** e));
    if (linearFactor !== 1) invFreq[i] = Math.fround(invFreq[i] / linearFactor);
  }
  const cos = new Float32Array(maxPositions * headDim);
  const sin = new Float32Array(maxPositions * headDim);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * invFreq[i]);
      // emb = cat(freqs, freqs): dims i and i + half share a frequency.
      cos[p * headDim + i] = cos[p * headDim + i + half] = Math.cos(angle);
      sin[p * headDim + i] = sin[p * headDim + i + half] = Math.sin(angle);
    }
  }
  const pos = arange(g, "seq");
  return {
    cos: gather(g.initializer(`${name}.cos`, "float32", [maxPositions, headDim], cos), pos),
    sin: gather(g.initializer(`${name}.sin`, "float32", [maxPositions, headDim], sin), pos),
  };
}

/** x·cos + rotate_half(x)·sin with rotate_half(x) = [-x2, x1] (halves of the last axis). */
export function applyRope(x: Tensor, rope: RopeTables): Tensor {
  const hd = x.shape[x.rank - 1] as number;
  const [x1, x2] = split(x, -1, [hd / 2, hd / 2]);
  const rotated = concat([neg(x2), x1], -1);
  return add(mul(x, rope.cos), mul(rotated, rope.sin));
}

// ---- attention ----------------------------------------------------------------------------------

/** [B, T, h·d] → [B, h, T, d]. */
export function splitHeads(x: Tensor, heads: number, headDim: number): Tensor {
  return transpose(reshape(x, [x.shape[0], x.shape[1], heads, headDim]), [0, 2, 1, 3]);
}

/** [B, h, T, d] → [B, T, h·d]. */
export function mergeHeads(x: Tensor): Tensor {
  const [b, h, t, d] = x.shape;
  return reshape(transpose(x, [0, 2, 1, 3]), [b, t, (h as number) * (d as number)]);
}

export interface AttentionOptions {
  /** Multiplies QKᵀ (usually headDim^-0.5). */
  scale: number;
  /** Dropout on the attention probabilities (training only; 0 = none). */
  dropout: number;
}

/**
 * softmax(Q Kᵀ · scale + bias) V for q [B, h, T, d] and k, v [B, kvh, T, d]. With grouped-query
 * attention (kvh < h) query head i uses key/value head floor(i / (h / kvh)), as transformers'
 * repeat_kv: the h/kvh query heads of a group are stacked along T instead of copying K and V.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, opts: AttentionOptions): Tensor {
  const [b, h, t, d] = q.shape;
  const kvh = k.shape[1] as number;
  const grouped = (h as number) !== kvh;
  const qq = grouped ? reshape(q, [b, kvh, -1, d]) : q;
  let scores = matmul(qq, k, { transB: true, alpha: opts.scale });
  if (grouped) scores = reshape(scores, [b, h, t, t]);
  let probs = dropout(softmax(add(scores, bias), -1), opts.dropout);
  if (grouped) probs = reshape(probs, [b, kvh, -1, t]);
  const ctx = matmul(probs, v);
  return grouped ? reshape(ctx, [b, h, t, d]) : ctx;
}
