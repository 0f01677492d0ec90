// Token attributions of a classifier's label logits, with the engine's autodiff: a graph whose
// backbone reads interpolated word embeddings e = b + α (x − b) instead of looking ids up, and one
// gradient of the label logits with respect to e per label (no weight gradients: the weights are
// frozen initializers). Every row of a run is one α, so the integration steps of integrated
// gradients are one batched graph run; the graph sums each label's weighted gradients over the rows
// and dots them with x − b per token.
//
//   integrated gradients   attr_i = (x_i − b_i) · Σ_k w_k ∇_e F(b + α_k (x − b))_i
//   gradient × input       attr_i = (x_i − b_i) · ∇_e F(x)_i       (one row, α = 1)
//
// F is the label's logit (per-label-softmax heads: the margin z1 − z0, whose sigmoid is the
// probability). The baseline b is the pad token's embedding at every position that is not a special
// token; special tokens ([CLS], [SEP], <s>) keep their own embedding, so their attribution is zero
// and the attributions of the text's tokens add up to F(x) − F(b). The pad embedding is the model's
// own "no token here" vector (what it sees at padded positions), closer to the inputs it was trained
// on than a zero vector, which no token has. Positions, attention mask and pooling stay those of
// the real input.

import {
  add,
  concat,
  constant,
  Graph,
  grad,
  mul,
  reduceSum,
  reshape,
  Session,
  type SessionOptions,
  slice,
  sub,
  type Tensor,
  tensor,
  unsqueeze,
} from "../engine/index.js";
import type { LoraAdapter } from "../io/peft.js";
import type { HeadSpec } from "../models/heads.js";
import { buildClassifier, type LoadedCheckpoint, sessionOptionsFor } from "../models/registry.js";

export type AttributionMethod = "ig" | "grad-x-input";

/** Quadrature of the IG path integral over α ∈ [0, 1]. */
export type IntegrationRule = "gauss-legendre" | "riemann";

export interface AttributeOptions {
  /** "ig" (integrated gradients, default) or "grad-x-input". */
  method?: AttributionMethod;
  /** IG integration points (default 32). */
  steps?: number;
  /** Default "gauss-legendre" (exact for polynomials of degree < 2·steps); "riemann" = midpoints. */
  rule?: IntegrationRule;
  /** Positions that keep their embedding in the baseline (special tokens). */
  keep?: readonly boolean[];
  /** Graph rows × sequence length per run (default 4096): bounds the memory of long texts. */
  tokensPerRun?: number;
}

/** Attributions of one token sequence, for every label of the classifier. */
export interface Attribution {
  /** F(x) per label. */
  logits: number[];
  /** F(baseline) per label. */
  baselineLogits: number[];
  /** [label][position]: each token's share of F(x) − F(baseline). */
  attributions: Float64Array[];
}

/** Gauss–Legendre nodes and weights on [0, 1] (Newton's method on the Legendre polynomial). */
export function gaussLegendre(n: number): { nodes: number[]; weights: number[] } {
  const nodes: number[] = [];
  const weights: number[] = [];
  for (let i = 1; i <= n; i++) {
    let x = Math.cos((Math.PI * (i - 0.25)) / (n + 0.5));
    let dp = 0;
    for (let it = 0; it < 100; it++) {
      let p0 = 1;
      let p1 = x;
      for (let k = 2; k <= n; k++) [p0, p1] = [p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k];
      if (n === 1) [p0, p1] = [1, x];
      dp = (n * (x * p1 - p0)) / (x * x - 1);
      const dx = p1 / dp;
      x -= dx;
      if (Math.abs(dx) < 1e-15) break;
    }
    nodes.push((1 - x) / 2);
    weights.push(1 / ((1 - x * x) * dp * dp));
  }
  return { nodes, weights };
}

/** α and weight of every row: the input (α = 1) and the baseline (α = 0) first, with weight 0 under IG. */
export function pathRows(method: AttributionMethod, steps: number, rule: IntegrationRule) {
  if (method === "grad-x-input") return { alphas: [1, 0], weights: [1, 0] };
  if (!Number.isInteger(steps) || steps < 1)
    throw new RangeError(`steps must be a positive integer, got ${steps}`);
  const q =
    rule === "riemann"
      ? {
          nodes: Array.from({ length: steps }, (_, k) => (k + 0.5) / steps),
          weights: new Array(steps).fill(1 / steps),
        }
      : gaussLegendre(steps);
  return { alphas: [1, 0, ...q.nodes], weights: [0, 0, ...q.weights] };
}

export interface AttributorOptions extends SessionOptions {
  head: HeadSpec;
  adapter?: LoraAdapter;
  /** Llama pooling pad id (see ClassifierOptions.padTokenId). */
  padTokenId?: number | null;
  /** The token id whose embedding is the baseline. */
  baselineId: number;
}

/** A compiled attribution graph for one model: see the file comment. */
export class Attributor {
  private constructor(
    private readonly session: Session,
    readonly numLabels: number,
    private readonly baselineId: number,
    private readonly withTokenTypes: boolean,
  ) {}

  /** Builds the graph (the checkpoint's arrays are used up by the LoRA merge). */
  static async create(ckpt: LoadedCheckpoint, opts: AttributorOptions): Promise<Attributor> {
    const g = new Graph();
    const baselineIds = g.input("baseline_ids", "int64", ["batch", "seq"]);
    const alphas = g.input("alphas", "float32", ["batch"]);
    const rowWeights = g.input("row_weights", "float32", ["batch"]);
    let e: Tensor | undefined;
    let delta: Tensor | undefined;
    const m = buildClassifier(g, ckpt, {
      head: opts.head,
      adapter: opts.adapter,
      merged: true,
      mergeInPlace: true,
      padTokenId: opts.padTokenId,
      embedWords: (lookup, inputIds) => {
        const x = lookup(inputIds);
        const b = lookup(baselineIds);
        delta = sub(x, b);
        e = add(b, mul(unsqueeze(alphas, [1, 2]), delta));
        return e;
      },
    });
    if (!e || !delta) throw new Error("the backbone did not read its word embeddings");
    const L = opts.head.numLabels;
    const z = labelLogits(m.logits, L);
    const perLabel: Tensor[] = [];
    for (let j = 0; j < L; j++) {
      const onehot = constant(
        g,
        Array.from({ length: L }, (_, k) => (k === j ? 1 : 0)),
        [1, L],
      );
      const ge = grad(z, [e], mul(unsqueeze(rowWeights, [1]), onehot)).get(e);
      if (!ge) throw new Error(`label ${j}: the logit does not depend on the embeddings`);
      perLabel.push(unsqueeze(reduceSum(mul(ge, delta), [0, 2]), [0]));
    }
    g.output("attributions", concat(perLabel, 0));
    g.output("label_logits", z);
    const session = await Session.fromGraph(g, { ...sessionOptionsFor(g), ...stripAttr(opts) });
    return new Attributor(session, L, opts.baselineId, session.inputNames.includes("token_type_ids"));
  }

  /** Attributions of `ids` (one sequence) for every label. */
  async attribute(ids: readonly number[], opts: AttributeOptions = {}): Promise<Attribution> {
    const T = ids.length;
    if (T === 0) throw new Error("attribute: no tokens");
    const { alphas, weights } = pathRows(
      opts.method ?? "ig",
      opts.steps ?? 32,
      opts.rule ?? "gauss-legendre",
    );
    const keep = opts.keep ?? [];
    const baseline = ids.map((id, i) => (keep[i] ? id : this.baselineId));
    const perRun = Math.max(1, Math.floor((opts.tokensPerRun ?? 4096) / T));
    const L = this.numLabels;
    const attributions = Array.from({ length: L }, () => new Float64Array(T));
    let logits: number[] = [];
    let baselineLogits: number[] = [];
    for (let r0 = 0; r0 < alphas.length; r0 += perRun) {
      const a = alphas.slice(r0, r0 + perRun);
      const rows = a.length;
      const rep = (row: readonly number[]) => {
        const out = new BigInt64Array(rows * T);
        for (let r = 0; r < rows; r++) for (let i = 0; i < T; i++) out[r * T + i] = BigInt(row[i]);
        return tensor("int64", out, [rows, T]);
      };
      const feeds = {
        input_ids: rep(ids),
        baseline_ids: rep(baseline),
        attention_mask: rep(ids.map(() => 1)),
        alphas: tensor("float32", Float32Array.from(a), [rows]),
        row_weights: tensor("float32", Float32Array.from(weights.slice(r0, r0 + perRun)), [rows]),
        ...(this.withTokenTypes ? { token_type_ids: rep(ids.map(() => 0)) } : {}),
      };
      const out = await this.session.run(feeds);
      const at = out.attributions.data as Float32Array;
      for (let j = 0; j < L; j++) for (let i = 0; i < T; i++) attributions[j][i] += at[j * T + i];
      if (r0 === 0) {
        const z = out.label_logits.data as Float32Array;
        logits = Array.from(z.subarray(0, L));
        baselineLogits = Array.from(z.subarray(L, 2 * L));
      }
    }
    return { logits, baselineLogits, attributions };
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

function stripAttr(o: AttributorOptions): SessionOptions {
  const { head: _h, adapter: _a, padTokenId: _p, baselineId: _b, ...rest } = o;
  return rest;
}

/** One logit per label: the multilabel head's, or the per-label-softmax head's margin z1 − z0. */
function labelLogits(logits: Tensor, L: number): Tensor {
  if (logits.rank === 2) return logits;
  const margin = sub(slice(logits, [1], [2], [2]), slice(logits, [0], [1], [2]));
  return reshape(margin, [logits.shape[0], L]);
}
