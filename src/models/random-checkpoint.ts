// A randomly initialised classifier checkpoint in Hugging Face format (config.json +
// model.safetensors) for BERT or Llama shapes, with the label names in its config. Used by
// `toxlora demo` (which must run offline with no pretrained model), by tests and by benchmarks.
// The tensors come from writeSyntheticCheckpoint (src/models/synthetic.ts); this adds the
// classifier-facing config. Quality is meaningless by design.
import { writeSyntheticCheckpoint } from "./synthetic.js";

export interface RandomCheckpointOptions {
  arch: "bert" | "llama";
  vocabSize: number;
  hidden?: number;
  layers?: number;
  heads?: number;
  /** Llama: key/value heads (grouped-query attention). Default = heads. */
  kvHeads?: number;
  intermediate?: number;
  maxPositions?: number;
  labels?: string[];
  padTokenId?: number;
  bosTokenId?: number;
  eosTokenId?: number;
  seed?: number;
  /** BERT hidden/attention dropout written to the config (default 0.1, as BERT). */
  dropout?: number;
}

/** Writes `config.json` and `model.safetensors` into `dir`; returns the config fields added. */
export async function writeRandomCheckpoint(
  dir: string,
  o: RandomCheckpointOptions,
): Promise<Record<string, unknown>> {
  const hidden = o.hidden ?? 32;
  const heads = o.heads ?? 4;
  const labels = o.labels ?? ["LABEL_0", "LABEL_1"];
  const config: Record<string, unknown> = {
    id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
    problem_type: "multi_label_classification",
    toxlora_random_init: true,
    initializer_range: 0.02,
    ...(o.arch === "bert"
      ? {
          hidden_act: "gelu",
          hidden_dropout_prob: o.dropout ?? 0.1,
          attention_probs_dropout_prob: o.dropout ?? 0.1,
          type_vocab_size: 2,
          layer_norm_eps: 1e-12,
          position_embedding_type: "absolute",
          pad_token_id: o.padTokenId ?? 0,
        }
      : {
          hidden_act: "silu",
          head_dim: hidden / heads,
          rms_norm_eps: 1e-6,
          attention_bias: false,
          mlp_bias: false,
          pad_token_id: o.padTokenId ?? null,
          bos_token_id: o.bosTokenId ?? 1,
          eos_token_id: o.eosTokenId ?? 2,
        }),
  };
  await writeSyntheticCheckpoint(dir, {
    family: o.arch,
    hidden,
    layers: o.layers ?? 2,
    heads,
    kvHeads: o.kvHeads,
    intermediate: o.intermediate ?? hidden * 4,
    vocab: o.vocabSize,
    maxPositions: o.maxPositions ?? 512,
    seed: o.seed ?? 0,
    config,
  });
  return config;
}
