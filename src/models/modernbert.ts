// ModernBertModel, as transformers' modeling_modernbert.py computes it in eager mode:
// embeddings = norm(tok_embeddings(ids)); pre-LN layers without biases
//   x = x + attn.Wo(attention(rope(q), rope(k), v))     [q|k|v] = attn.Wqkv(attn_norm(x))
//   x = x + mlp.Wo(act(input) · gate)                    [input|gate] = mlp.Wi(mlp_norm(x))
// then final_norm. Layer 0 has no attn_norm (Identity). Global layers (layer_types
// "full_attention", by default every global_attn_every_n_layers-th) see every token with RoPE
// theta global_rope_theta; local layers see |i - j| <= local_attention / 2 with local_rope_theta.
// Names are the checkpoint's under `model.` (the base-model prefix of ModernBertForSequenceClassification).

import { add, mul, split, type Tensor } from "../engine/index.js";
import type { ModernBertConfig } from "../io/hf-config.js";
import {
  applyRope,
  attention,
  mergeHeads,
  paddingMaskBias,
  type RopeTables,
  ropeTables,
  slidingMaskBias,
  splitHeads,
} from "./attention.js";
import {
  activation,
  type BackboneContext,
  type BackboneInputs,
  layer,
  layerNormFrom,
  maybeDropout,
  wordEmbeddings,
} from "./common.js";
import { linear } from "./lora.js";

export interface ModernBertOutputs {
  /** [batch, seq, hidden], after final_norm. */
  lastHiddenState: Tensor;
}

export function modernBertModel(
  ctx: BackboneContext,
  cfg: ModernBertConfig,
  prefix: string,
  inputs: BackboneInputs,
): ModernBertOutputs {
  const { g, weights, lora } = ctx;
  const H = cfg.hidden_size;
  const nh = cfg.num_attention_heads;
  const hd = cfg.head_dim;
  const I = cfg.intermediate_size;
  const eps = cfg.norm_eps;
  const normBias = cfg.norm_bias ? "required" : "none";
  const where = cfg.source;

  // Masks and RoPE tables are built once and shared by the layers of each kind.
  let globalMask: Tensor | undefined;
  let localMask: Tensor | undefined;
  let globalRope: RopeTables | undefined;
  let localRope: RopeTables | undefined;
  const maxPos = cfg.max_position_embeddings;

  let x = wordEmbeddings(ctx, inputs, `${prefix}embeddings.tok_embeddings`, cfg.vocab_size, H);
  x = layerNormFrom(ctx, `${prefix}embeddings.norm`, x, H, eps, normBias);
  x = maybeDropout(ctx, x, cfg.embedding_dropout);

  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const lp = `${prefix}layers.${l}`;
    const local = cfg.layer_types[l] === "sliding_attention";
    let bias: Tensor;
    let rope: RopeTables;
    if (local) {
      localMask ??= slidingMaskBias(inputs.attentionMask, Math.floor(cfg.local_attention / 2));
      localRope ??= ropeTables(g, `${prefix}rope_local`, hd, cfg.local_rope_theta, maxPos);
      bias = localMask;
      rope = localRope;
    } else {
      globalMask ??= paddingMaskBias(inputs.attentionMask);
      globalRope ??= ropeTables(g, `${prefix}rope_global`, hd, cfg.global_rope_theta, maxPos);
      bias = globalMask;
      rope = globalRope;
    }

    x = layer(ctx, x, (x) => {
      const n = l === 0 ? x : layerNormFrom(ctx, `${lp}.attn_norm`, x, H, eps, normBias);
      const qkv = linear(g, `${lp}.attn.Wqkv`, n, weights, lora, { inFeatures: H, outFeatures: 3 * H });
      // Wqkv's output is [3, heads, head_dim] on the last axis: q | k | v, each head-major.
      const [q, k, v] = split(qkv, -1, [H, H, H]).map((t) => splitHeads(t, nh, hd));
      const a = attention(applyRope(q, rope), applyRope(k, rope), v, bias, {
        scale: hd ** -0.5,
        dropout: ctx.dropout ? cfg.attention_dropout : 0,
      });
      const o = linear(g, `${lp}.attn.Wo`, mergeHeads(a), weights, lora, { inFeatures: H, outFeatures: H });
      x = add(x, maybeDropout(ctx, o, cfg.attention_dropout));

      const m = layerNormFrom(ctx, `${lp}.mlp_norm`, x, H, eps, normBias);
      const wi = linear(g, `${lp}.mlp.Wi`, m, weights, lora, { inFeatures: H, outFeatures: 2 * I });
      const [input, gate] = split(wi, -1, [I, I]);
      const hidden = maybeDropout(
        ctx,
        mul(activation(input, cfg.hidden_activation, where), gate),
        cfg.mlp_dropout,
      );
      return add(x, linear(g, `${lp}.mlp.Wo`, hidden, weights, lora, { inFeatures: I, outFeatures: H }));
    });
  }
  return { lastHiddenState: layerNormFrom(ctx, `${prefix}final_norm`, x, H, eps, normBias) };
}
