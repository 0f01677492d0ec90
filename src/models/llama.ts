// LlamaModel (the llm-jp-3 family), as transformers' modeling_llama.py computes it in eager mode:
// pre-RMSNorm decoder layers
//   x = x + o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n)))   n = input_layernorm(x)
//   x = x + down_proj(silu(gate_proj(n)) · up_proj(n))                        n = post_attention_layernorm(x)
// then the final `model.norm`. RoPE uses rotate_half with position_ids = arange(T) (also with left
// padding, as transformers' forward default); grouped-query attention maps query head i to key/value
// head i / (heads / kv_heads); the mask is causal and hides padded keys.

import { add, mul, type Tensor } from "../engine/index.js";
import type { LlamaConfig } from "../io/hf-config.js";
import { applyRope, attention, causalMaskBias, mergeHeads, ropeTables, splitHeads } from "./attention.js";
import {
  activation,
  type BackboneContext,
  type BackboneInputs,
  layer,
  rmsNormFrom,
  wordEmbeddings,
} from "./common.js";
import { linear } from "./lora.js";

export interface LlamaOutputs {
  /** [batch, seq, hidden], after the final norm. */
  lastHiddenState: Tensor;
}

function ropeFactor(cfg: LlamaConfig): number {
  const s = cfg.rope_scaling;
  if (!s) return 1;
  if (s.rope_type === "linear" && typeof s.factor === "number") return s.factor;
  throw new Error(
    `${cfg.source}: rope_scaling of type "${s.rope_type}" is not supported (plain RoPE and "linear" are)`,
  );
}

export function llamaModel(
  ctx: BackboneContext,
  cfg: LlamaConfig,
  prefix: string,
  inputs: BackboneInputs,
): LlamaOutputs {
  const { g, weights, lora } = ctx;
  const H = cfg.hidden_size;
  const nh = cfg.num_attention_heads;
  const kvh = cfg.num_key_value_heads;
  const hd = cfg.head_dim;
  const I = cfg.intermediate_size;
  const eps = cfg.rms_norm_eps;
  const where = cfg.source;
  const rope = ropeTables(
    g,
    `${prefix}rope`,
    hd,
    cfg.rope_theta,
    cfg.max_position_embeddings,
    ropeFactor(cfg),
  );
  const bias = causalMaskBias(inputs.attentionMask);
  const attnDropout = ctx.dropout ? cfg.attention_dropout : 0;

  let x = wordEmbeddings(ctx, inputs, `${prefix}embed_tokens`, cfg.vocab_size, H);
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    x = layer(ctx, x, (x) => {
      const lp = `${prefix}layers.${l}`;
      let n = rmsNormFrom(ctx, `${lp}.input_layernorm`, x, H, eps);
      const proj = (name: string, heads: number) =>
        splitHeads(
          linear(g, `${lp}.self_attn.${name}`, n, weights, lora, { inFeatures: H, outFeatures: heads * hd }),
          heads,
          hd,
        );
      const q = applyRope(proj("q_proj", nh), rope);
      const k = applyRope(proj("k_proj", kvh), rope);
      const v = proj("v_proj", kvh);
      const a = attention(q, k, v, bias, { scale: hd ** -0.5, dropout: attnDropout });
      const o = linear(g, `${lp}.self_attn.o_proj`, mergeHeads(a), weights, lora, {
        inFeatures: nh * hd,
        outFeatures: H,
      });
      x = add(x, o);
      n = rmsNormFrom(ctx, `${lp}.post_attention_layernorm`, x, H, eps);
      const mlp = (name: string, input: Tensor, inF: number, outF: number) =>
        linear(g, `${lp}.mlp.${name}`, input, weights, lora, { inFeatures: inF, outFeatures: outF });
      const gate = mlp("gate_proj", n, H, I);
      const act = activation(gate, cfg.hidden_act, where);
      return add(x, mlp("down_proj", mul(act, mlp("up_proj", n, H, I)), I, H));
    });
  }
  return { lastHiddenState: rmsNormFrom(ctx, `${prefix}norm`, x, H, eps) };
}
