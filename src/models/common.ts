// Small helpers the architecture files share: activations by their transformers name, norms and
// embeddings read from the checkpoint, and the per-graph options of a backbone.

import {
  cast,
  dropout,
  type Graph,
  gather,
  gelu,
  keepCostly,
  layerNorm,
  relu,
  rmsNorm,
  silu,
  type Tensor,
  tanh,
} from "../engine/index.js";
import type { LoraContext } from "./lora.js";
import { type Presence, requireWeight, type WeightSource, weightFor } from "./weights.js";

/** What every backbone builder receives besides its config. */
export interface BackboneInputs {
  /** int64 [batch, seq] token ids. */
  inputIds: Tensor;
  /** int64 [batch, seq], 1 for tokens and 0 for padding. */
  attentionMask: Tensor;
  /** int64 [batch, seq] segment ids (BERT family only). */
  tokenTypeIds?: Tensor;
  /**
   * Replaces the word-embedding lookup of inputIds: given the lookup (ids → [batch, seq, hidden]),
   * returns the tensor the backbone reads instead (attributions differentiate with respect to it).
   */
  embedWords?: (lookup: (ids: Tensor) => Tensor, inputIds: Tensor) => Tensor;
}

export interface BackboneContext {
  g: Graph;
  weights: WeightSource;
  lora: LoraContext;
  /** Model dropouts (hidden, attention…) active: training mode with the config's rates. */
  dropout: boolean;
  /** Gradient checkpointing: each layer is recomputed in the backward pass (see {@link layer}). */
  recompute?: CheckpointMode | false;
}

/**
 * Gradient checkpointing: "full" recomputes all of a layer from its input in the backward pass;
 * "selective" keeps the products with frozen weights (keepCostly) and recomputes the rest.
 */
export type CheckpointMode = "full" | "selective";

/**
 * One transformer layer, `x` → `fn(x)`. With gradient checkpointing its values are not kept for
 * the backward pass but recomputed from `x` when the gradient reaches the layer (Graph.recompute):
 * the saved activations shrink from every layer's intermediates to one input per layer ("full"),
 * or to that input and the layer's frozen-weight products ("selective").
 */
export function layer(ctx: BackboneContext, x: Tensor, fn: (x: Tensor) => Tensor): Tensor {
  if (!ctx.recompute) return fn(x);
  return ctx.g.recompute(() => fn(x), ctx.recompute === "selective" ? keepCostly : undefined);
}

/** Dropout with the config's rate when the model trains, identity otherwise. */
export function maybeDropout(ctx: BackboneContext, x: Tensor, rate: number | null | undefined): Tensor {
  return ctx.dropout && rate ? dropout(x, rate) : x;
}

/** transformers' ACT2FN for the activations these architectures use. */
export function activation(x: Tensor, name: string, where: string): Tensor {
  switch (name) {
    case "gelu":
      return gelu(x, "none");
    case "gelu_new":
    case "gelu_pytorch_tanh":
      return gelu(x, "tanh");
    case "relu":
      return relu(x);
    case "silu":
    case "swish":
      return silu(x);
    case "tanh":
      return tanh(x);
    default:
      throw new Error(`${where}: activation "${name}" is not supported (gelu, gelu_new, relu, silu, tanh)`);
  }
}

/** The frozen checkpoint tensor `key` as a graph initializer of the same name. */
function frozen(ctx: BackboneContext, key: string, shape: number[]): Tensor {
  return ctx.g.initializer(key, "float32", shape, requireWeight(ctx.weights, key, shape));
}

/** LayerNorm `<path>.weight` (+ `<path>.bias` when the checkpoint has it). */
export function layerNormFrom(
  ctx: BackboneContext,
  path: string,
  x: Tensor,
  size: number,
  eps: number,
  bias: Presence = "optional",
): Tensor {
  const w = frozen(ctx, `${path}.weight`, [size]);
  const bData = weightFor(ctx.weights, `${path}.bias`, [size], bias);
  const b = bData ? ctx.g.initializer(`${path}.bias`, "float32", [size], bData) : null;
  return layerNorm(x, w, b, eps);
}

/** RMSNorm with weight `<path>.weight`. */
export function rmsNormFrom(
  ctx: BackboneContext,
  path: string,
  x: Tensor,
  size: number,
  eps: number,
): Tensor {
  return rmsNorm(x, frozen(ctx, `${path}.weight`, [size]), eps);
}

/** The word embeddings of `inputs`: table `<path>.weight` at inputIds, unless `embedWords` replaces them. */
export function wordEmbeddings(
  ctx: BackboneContext,
  inputs: BackboneInputs,
  path: string,
  rows: number,
  dim: number,
): Tensor {
  const table = frozen(ctx, `${path}.weight`, [rows, dim]);
  const lookup = (ids: Tensor): Tensor => gather(table, cast(ids, "int64"));
  return inputs.embedWords ? inputs.embedWords(lookup, inputs.inputIds) : lookup(inputs.inputIds);
}

/** Rows of the embedding table `<path>.weight` [rows, dim] at int64 ids. */
export function embedding(
  ctx: BackboneContext,
  path: string,
  ids: Tensor,
  rows: number,
  dim: number,
): Tensor {
  return gather(frozen(ctx, `${path}.weight`, [rows, dim]), cast(ids, "int64"));
}
