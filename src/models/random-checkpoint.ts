// Writes a randomly initialised checkpoint in Hugging Face format (config.json + model.safetensors)
// for BERT or Llama shapes. Used by `toxlora demo` (which must run offline with no pretrained
// model), by tests, and by benchmarks. Initialisation follows HF `_init_weights`: normal(0, 0.02)
// matrices and embeddings, zero biases, unit norm weights. Quality is meaningless by design.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { createRng } from "../data/random.js";
import { writeJsonAtomic } from "../io/atomic.js";
import { type TensorToWrite, writeSafetensors } from "../io/safetensors.js";

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

function gaussian(n: number, std: number, rng: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    // Box-Muller: two normals from two uniforms.
    const u = Math.max(rng(), 1e-12);
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** Writes `config.json` and `model.safetensors` into `dir`; returns the config written. */
export async function writeRandomCheckpoint(
  dir: string,
  o: RandomCheckpointOptions,
): Promise<Record<string, unknown>> {
  const hidden = o.hidden ?? 32;
  const layers = o.layers ?? 2;
  const heads = o.heads ?? 4;
  const kvHeads = o.kvHeads ?? heads;
  const inter = o.intermediate ?? hidden * 4;
  const maxPos = o.maxPositions ?? 512;
  const labels = o.labels ?? ["LABEL_0", "LABEL_1"];
  const rng = createRng(o.seed ?? 0);
  const next = () => rng.next();
  const tensors = new Map<string, TensorToWrite>();
  const normal = (key: string, shape: number[]) =>
    tensors.set(key, {
      shape,
      data: () =>
        gaussian(
          shape.reduce((a, b) => a * b, 1),
          0.02,
          next,
        ),
    });
  const zeros = (key: string, n: number) => tensors.set(key, { shape: [n], data: new Float32Array(n) });
  const ones = (key: string, n: number) =>
    tensors.set(key, { shape: [n], data: new Float32Array(n).fill(1) });
  const id2label = Object.fromEntries(labels.map((l, i) => [String(i), l]));
  const label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
  let config: Record<string, unknown>;

  if (o.arch === "bert") {
    normal("embeddings.word_embeddings.weight", [o.vocabSize, hidden]);
    normal("embeddings.position_embeddings.weight", [maxPos, hidden]);
    normal("embeddings.token_type_embeddings.weight", [2, hidden]);
    ones("embeddings.LayerNorm.weight", hidden);
    zeros("embeddings.LayerNorm.bias", hidden);
    for (let l = 0; l < layers; l++) {
      const p = `encoder.layer.${l}`;
      for (const m of [
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
      ]) {
        normal(`${p}.${m}.weight`, [hidden, hidden]);
        zeros(`${p}.${m}.bias`, hidden);
      }
      ones(`${p}.attention.output.LayerNorm.weight`, hidden);
      zeros(`${p}.attention.output.LayerNorm.bias`, hidden);
      normal(`${p}.intermediate.dense.weight`, [inter, hidden]);
      zeros(`${p}.intermediate.dense.bias`, inter);
      normal(`${p}.output.dense.weight`, [hidden, inter]);
      zeros(`${p}.output.dense.bias`, hidden);
      ones(`${p}.output.LayerNorm.weight`, hidden);
      zeros(`${p}.output.LayerNorm.bias`, hidden);
    }
    normal("pooler.dense.weight", [hidden, hidden]);
    zeros("pooler.dense.bias", hidden);
    config = {
      architectures: ["BertModel"],
      model_type: "bert",
      vocab_size: o.vocabSize,
      hidden_size: hidden,
      num_hidden_layers: layers,
      num_attention_heads: heads,
      intermediate_size: inter,
      hidden_act: "gelu",
      hidden_dropout_prob: o.dropout ?? 0.1,
      attention_probs_dropout_prob: o.dropout ?? 0.1,
      max_position_embeddings: maxPos,
      type_vocab_size: 2,
      initializer_range: 0.02,
      layer_norm_eps: 1e-12,
      pad_token_id: o.padTokenId ?? 0,
      position_embedding_type: "absolute",
    };
  } else {
    const hd = hidden / heads;
    normal("model.embed_tokens.weight", [o.vocabSize, hidden]);
    for (let l = 0; l < layers; l++) {
      const p = `model.layers.${l}`;
      normal(`${p}.self_attn.q_proj.weight`, [heads * hd, hidden]);
      normal(`${p}.self_attn.k_proj.weight`, [kvHeads * hd, hidden]);
      normal(`${p}.self_attn.v_proj.weight`, [kvHeads * hd, hidden]);
      normal(`${p}.self_attn.o_proj.weight`, [hidden, heads * hd]);
      normal(`${p}.mlp.gate_proj.weight`, [inter, hidden]);
      normal(`${p}.mlp.up_proj.weight`, [inter, hidden]);
      normal(`${p}.mlp.down_proj.weight`, [hidden, inter]);
      ones(`${p}.input_layernorm.weight`, hidden);
      ones(`${p}.post_attention_layernorm.weight`, hidden);
    }
    ones("model.norm.weight", hidden);
    config = {
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      vocab_size: o.vocabSize,
      hidden_size: hidden,
      num_hidden_layers: layers,
      num_attention_heads: heads,
      num_key_value_heads: kvHeads,
      head_dim: hd,
      intermediate_size: inter,
      hidden_act: "silu",
      max_position_embeddings: maxPos,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
      attention_bias: false,
      mlp_bias: false,
      tie_word_embeddings: false,
      initializer_range: 0.02,
      pad_token_id: o.padTokenId ?? null,
      bos_token_id: o.bosTokenId ?? 1,
      eos_token_id: o.eosTokenId ?? 2,
    };
  }
  config = {
    ...config,
    id2label,
    label2id,
    problem_type: "multi_label_classification",
    torch_dtype: "float32",
    toxlora_random_init: true,
  };
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  await writeJsonAtomic(join(dir, "config.json"), config);
  return config;
}
