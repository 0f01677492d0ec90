// BertModel (and RoBERTa-style encoders), as transformers' modeling_bert.py computes it in eager
// mode: embeddings (word + token type + absolute position) → LayerNorm, then post-LN layers
//   x = LN(x + dense(attention(x)));  x = LN(x + output.dense(act(intermediate.dense(x))))
// with scores QKᵀ/√d + (1 - mask)·finfo.min. Names are the checkpoint's under `bert.` (or
// `roberta.` for RoBERTa, XLM-R, CamemBERT), the base-model prefix of *ForSequenceClassification.

import {
  add,
  arange,
  cast,
  cumsum,
  equal,
  mul,
  not,
  reshape,
  scalar,
  slice,
  type Tensor,
  tanh,
} from "../engine/index.js";
import type { BertConfig } from "../io/hf-config.js";
import { attention, mergeHeads, paddingMaskBias, splitHeads } from "./attention.js";
import {
  activation,
  type BackboneContext,
  type BackboneInputs,
  embedding,
  layer,
  layerNormFrom,
  maybeDropout,
  wordEmbeddings,
} from "./common.js";
import { linear } from "./lora.js";

export interface BertOutputs {
  /** [batch, seq, hidden] */
  lastHiddenState: Tensor;
}

/** RoBERTa position ids: pad + cumsum(ids != pad) for tokens, pad for padding (transformers' rule). */
function robertaPositionIds(inputIds: Tensor, pad: number): Tensor {
  const g = inputIds.graph;
  const isToken = cast(not(equal(inputIds, scalar(g, pad, "int64"))), "int64");
  return add(mul(cumsum(isToken, 1), isToken), scalar(g, pad, "int64"));
}

export function bertModel(
  ctx: BackboneContext,
  cfg: BertConfig,
  prefix: string,
  inputs: BackboneInputs,
): BertOutputs {
  const { g, weights, lora } = ctx;
  const H = cfg.hidden_size;
  const where = cfg.source;
  if (cfg.position_embedding_type !== "absolute") {
    throw new Error(
      `${where}: position_embedding_type "${cfg.position_embedding_type}" is not supported (only "absolute")`,
    );
  }
  const p = `${prefix}embeddings`;
  const words = wordEmbeddings(ctx, inputs, `${p}.word_embeddings`, cfg.vocab_size, H);
  const types = inputs.tokenTypeIds
    ? embedding(ctx, `${p}.token_type_embeddings`, inputs.tokenTypeIds, cfg.type_vocab_size, H)
    : null;
  let positionIds: Tensor;
  if (cfg.roberta_positions) {
    if (cfg.pad_token_id === null) throw new Error(`${where}: RoBERTa-style models need pad_token_id`);
    positionIds = robertaPositionIds(inputs.inputIds, cfg.pad_token_id);
  } else {
    positionIds = arange(g, "seq");
  }
  const positions = embedding(ctx, `${p}.position_embeddings`, positionIds, cfg.max_position_embeddings, H);
  let x = types ? add(words, types) : words;
  x = add(x, positions);
  x = maybeDropout(
    ctx,
    layerNormFrom(ctx, `${p}.LayerNorm`, x, H, cfg.layer_norm_eps),
    cfg.hidden_dropout_prob,
  );

  const bias = paddingMaskBias(inputs.attentionMask);
  const nh = cfg.num_attention_heads;
  const hd = cfg.head_dim;
  const I = cfg.intermediate_size;
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    x = layer(ctx, x, (x) => {
      const lp = `${prefix}encoder.layer.${l}`;
      const proj = (name: string) =>
        splitHeads(
          linear(g, `${lp}.attention.self.${name}`, x, weights, lora, { inFeatures: H, outFeatures: H }),
          nh,
          hd,
        );
      const a = attention(proj("query"), proj("key"), proj("value"), bias, {
        scale: 1 / Math.sqrt(hd),
        dropout: ctx.dropout ? cfg.attention_probs_dropout_prob : 0,
      });
      let o = linear(g, `${lp}.attention.output.dense`, mergeHeads(a), weights, lora, {
        inFeatures: H,
        outFeatures: H,
      });
      o = maybeDropout(ctx, o, cfg.hidden_dropout_prob);
      x = layerNormFrom(ctx, `${lp}.attention.output.LayerNorm`, add(o, x), H, cfg.layer_norm_eps);

      const inter = activation(
        linear(g, `${lp}.intermediate.dense`, x, weights, lora, { inFeatures: H, outFeatures: I }),
        cfg.hidden_act,
        where,
      );
      let out = linear(g, `${lp}.output.dense`, inter, weights, lora, { inFeatures: I, outFeatures: H });
      out = maybeDropout(ctx, out, cfg.hidden_dropout_prob);
      return layerNormFrom(ctx, `${lp}.output.LayerNorm`, add(out, x), H, cfg.layer_norm_eps);
    });
  }
  return { lastHiddenState: x };
}

/** Hidden state of the first token ([CLS] / <s>): [batch, hidden]. */
export function firstToken(h: Tensor): Tensor {
  const H = h.shape[2] as number;
  return reshape(slice(h, [0], [1], [1]), [h.shape[0], H]);
}

/** BertPooler: tanh(pooler.dense(h[:, 0])). The pooler is part of the backbone (LoRA can target it). */
export function bertPooler(ctx: BackboneContext, cfg: BertConfig, prefix: string, h: Tensor): Tensor {
  const H = cfg.hidden_size;
  return tanh(
    linear(ctx.g, `${prefix}pooler.dense`, firstToken(h), ctx.weights, ctx.lora, {
      inFeatures: H,
      outFeatures: H,
    }),
  );
}
