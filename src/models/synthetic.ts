// Random checkpoints in Hugging Face format, for tests and benchmarks: a config.json and a
// model.safetensors with every tensor a real checkpoint of that architecture has (same names and
// shapes), filled with seeded random values. Tensors are generated while the file is written, so a
// multi-GB checkpoint needs little memory.

import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { createRng } from "../data/random.js";
import { type SafetensorsDtype, type TensorToWrite, writeSafetensors } from "../io/safetensors.js";

export interface SyntheticSpec {
  family: "bert" | "llama" | "modernbert";
  hidden: number;
  layers: number;
  heads: number;
  /** Llama only (default = heads). */
  kvHeads?: number;
  intermediate: number;
  vocab: number;
  maxPositions?: number;
  /** Extra config.json fields (e.g. id2label, pad_token_id, local_attention). */
  config?: Record<string, unknown>;
  /** Also write lm_head.weight (Llama) as a causal-LM checkpoint has it. Default false. */
  lmHead?: boolean;
  seed?: number;
  /** Stored dtype (default F32). */
  dtype?: SafetensorsDtype;
}

type Shapes = [name: string, shape: number[], kind: "matrix" | "norm" | "bias"][];

function tensorList(s: SyntheticSpec): Shapes {
  const H = s.hidden;
  const I = s.intermediate;
  const out: Shapes = [];
  const maxPos = s.maxPositions ?? 128;
  if (s.family === "llama") {
    const hd = H / s.heads;
    const kv = (s.kvHeads ?? s.heads) * hd;
    out.push(["model.embed_tokens.weight", [s.vocab, H], "matrix"]);
    for (let l = 0; l < s.layers; l++) {
      const p = `model.layers.${l}`;
      out.push(
        [`${p}.self_attn.q_proj.weight`, [H, H], "matrix"],
        [`${p}.self_attn.k_proj.weight`, [kv, H], "matrix"],
        [`${p}.self_attn.v_proj.weight`, [kv, H], "matrix"],
        [`${p}.self_attn.o_proj.weight`, [H, H], "matrix"],
        [`${p}.mlp.gate_proj.weight`, [I, H], "matrix"],
        [`${p}.mlp.up_proj.weight`, [I, H], "matrix"],
        [`${p}.mlp.down_proj.weight`, [H, I], "matrix"],
        [`${p}.input_layernorm.weight`, [H], "norm"],
        [`${p}.post_attention_layernorm.weight`, [H], "norm"],
      );
    }
    out.push(["model.norm.weight", [H], "norm"]);
    if (s.lmHead) out.push(["lm_head.weight", [s.vocab, H], "matrix"]);
  } else if (s.family === "bert") {
    out.push(
      ["embeddings.word_embeddings.weight", [s.vocab, H], "matrix"],
      ["embeddings.position_embeddings.weight", [maxPos, H], "matrix"],
      ["embeddings.token_type_embeddings.weight", [2, H], "matrix"],
      ["embeddings.LayerNorm.weight", [H], "norm"],
      ["embeddings.LayerNorm.bias", [H], "bias"],
    );
    for (let l = 0; l < s.layers; l++) {
      const p = `encoder.layer.${l}`;
      for (const m of ["query", "key", "value"]) {
        out.push(
          [`${p}.attention.self.${m}.weight`, [H, H], "matrix"],
          [`${p}.attention.self.${m}.bias`, [H], "bias"],
        );
      }
      out.push(
        [`${p}.attention.output.dense.weight`, [H, H], "matrix"],
        [`${p}.attention.output.dense.bias`, [H], "bias"],
        [`${p}.attention.output.LayerNorm.weight`, [H], "norm"],
        [`${p}.attention.output.LayerNorm.bias`, [H], "bias"],
        [`${p}.intermediate.dense.weight`, [I, H], "matrix"],
        [`${p}.intermediate.dense.bias`, [I], "bias"],
        [`${p}.output.dense.weight`, [H, I], "matrix"],
        [`${p}.output.dense.bias`, [H], "bias"],
        [`${p}.output.LayerNorm.weight`, [H], "norm"],
        [`${p}.output.LayerNorm.bias`, [H], "bias"],
      );
    }
    out.push(["pooler.dense.weight", [H, H], "matrix"], ["pooler.dense.bias", [H], "bias"]);
  } else {
    out.push(
      ["embeddings.tok_embeddings.weight", [s.vocab, H], "matrix"],
      ["embeddings.norm.weight", [H], "norm"],
    );
    for (let l = 0; l < s.layers; l++) {
      const p = `layers.${l}`;
      if (l > 0) out.push([`${p}.attn_norm.weight`, [H], "norm"]);
      out.push(
        [`${p}.attn.Wqkv.weight`, [3 * H, H], "matrix"],
        [`${p}.attn.Wo.weight`, [H, H], "matrix"],
        [`${p}.mlp_norm.weight`, [H], "norm"],
        [`${p}.mlp.Wi.weight`, [2 * I, H], "matrix"],
        [`${p}.mlp.Wo.weight`, [H, I], "matrix"],
      );
    }
    out.push(["final_norm.weight", [H], "norm"]);
  }
  return out;
}

function configJson(s: SyntheticSpec): Record<string, unknown> {
  const common = {
    hidden_size: s.hidden,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    intermediate_size: s.intermediate,
    vocab_size: s.vocab,
    max_position_embeddings: s.maxPositions ?? 128,
    torch_dtype: "float32",
  };
  const perFamily: Record<SyntheticSpec["family"], Record<string, unknown>> = {
    llama: {
      model_type: "llama",
      architectures: ["LlamaForCausalLM"],
      num_key_value_heads: s.kvHeads ?? s.heads,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      tie_word_embeddings: false,
      pad_token_id: 0,
    },
    bert: { model_type: "bert", architectures: ["BertModel"], pad_token_id: 0 },
    modernbert: { model_type: "modernbert", architectures: ["ModernBertModel"], pad_token_id: 0 },
  };
  return { ...common, ...perFamily[s.family], ...s.config };
}

/**
 * Writes `dir/config.json` and `dir/model.safetensors` for a random model of the given shape.
 * Matrices are U(±0.02·√3) (std 0.02), norm weights 1 ± 0.1, biases ± 0.02.
 */
export async function writeSyntheticCheckpoint(
  dir: string,
  spec: SyntheticSpec,
  onProgress?: (bytes: number, total: number) => void,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "config.json"), `${JSON.stringify(configJson(spec), null, 2)}\n`);
  const rng = createRng(spec.seed ?? 0);
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, shape, kind] of tensorList(spec)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const [center, half] =
      kind === "norm" ? [1, 0.1] : kind === "bias" ? [0, 0.02] : [0, 0.02 * Math.sqrt(3)];
    tensors.set(name, {
      shape,
      dtype: spec.dtype ?? "F32",
      // Generated in 4 M-value chunks while the writer reaches this tensor.
      data: function* () {
        for (let at = 0; at < n; at += 1 << 22) {
          const chunk = new Float32Array(Math.min(1 << 22, n - at));
          for (let i = 0; i < chunk.length; i++) chunk[i] = center + (rng.next() * 2 - 1) * half;
          yield chunk;
        }
      },
    });
  }
  await writeSafetensors(path.join(dir, "model.safetensors"), tensors, { format: "pt" }, { onProgress });
}
