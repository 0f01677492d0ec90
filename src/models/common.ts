// Small helpers the architecture files share: activations by their transformers name, norms and
// embeddings read from the checkpoint, and the per-graph options of a backbone.

import {
  cast,
  dropout,
  type Graph,
  gather,
  gelu,
  layerNorm,
  relu,
  rmsNorm,
  silu,
  type Tensor,
  tanh,
} from "../engine/index.js";
import type { LoraContext } from "./lora.js";
import { optionalWeight, requireWeight, type WeightSource } from "./weights.js";

/** What every backbone builder receives besides its config. */
export interface BackboneInputs {
  /** int64 [batch, seq] token ids. */
  inputIds: Tensor;
  /** int64 [batch, seq], 1 for tokens and 0 for padding. */
  attentionMask: Tensor;
  /** int64 [batch, seq] segment ids (BERT family only). */
  tokenTypeIds?: Tensor;
}

export interface BackboneContext {
  g: Graph;
  weights: WeightSource;
  lora: LoraContext;
  /** Model dropouts (hidden, attention…) active: training mode with the config's rates. */
  dropout: boolean;
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

/** LayerNorm `<path>.weight` (+ `<path>.bias` when the checkpoint has it). */
export function layerNormFrom(
  ctx: BackboneContext,
  path: string,
  x: Tensor,
  size: number,
  eps: number,
  bias: "required" | "optional" | "none" = "optional",
): Tensor {
  const { g, weights } = ctx;
  const w = g.initializer(
    `${path}.weight`,
    "float32",
    [size],
    requireWeight(weights, `${path}.weight`, [size]),
  );
  const bData =
    bias === "required"
      ? requireWeight(weights, `${path}.bias`, [size])
      : bias === "optional"
        ? optionalWeight(weights, `${path}.bias`, [size])
        : undefined;
  const b = bData ? g.initializer(`${path}.bias`, "float32", [size], bData) : null;
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
  const w = ctx.g.initializer(
    `${path}.weight`,
    "float32",
    [size],
    requireWeight(ctx.weights, `${path}.weight`, [size]),
  );
  return rmsNorm(x, w, eps);
}

/** Rows of the embedding table `<path>.weight` [rows, dim] at int64 ids. */
export function embedding(
  ctx: BackboneContext,
  path: string,
  ids: Tensor,
  rows: number,
  dim: number,
): Tensor {
  const table = ctx.g.initializer(
    `${path}.weight`,
    "float32",
    [rows, dim],
    requireWeight(ctx.weights, `${path}.weight`, [rows, dim]),
  );
  return gather(table, cast(ids, "int64"));
}
