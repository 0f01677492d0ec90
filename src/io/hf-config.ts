// Hugging Face `config.json` → typed model configs (validated with zod).
//
// Field names stay exactly as in transformers' configuration classes (snake_case), so a reader
// who knows `BertConfig`, `ModernBertConfig` or `LlamaConfig` finds the same names here. Missing
// fields get transformers' defaults, as `from_pretrained` would give them. A few values that
// newer transformers versions store in other shapes (`rope_parameters`, `layer_types`) are
// normalised into one form, documented on each field.
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";

/** The architectures toxlora implements. */
export type ModelFamily = "bert" | "modernbert" | "llama";

/** Supported `model_type` values and the architecture that runs them. */
export const SUPPORTED_MODEL_TYPES: Readonly<Record<string, ModelFamily>> = {
  bert: "bert",
  roberta: "bert",
  "xlm-roberta": "bert",
  camembert: "bert",
  modernbert: "modernbert",
  llama: "llama",
};

/** Fields every supported config has. */
export interface BaseModelConfig {
  /** Which toxlora architecture runs this model. */
  family: ModelFamily;
  /** `model_type` as written in config.json (e.g. "bert", "roberta", "modernbert", "llama"). */
  model_type: string;
  /** transformers class names, e.g. ["LlamaForCausalLM"] ([] when absent). */
  architectures: string[];
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  max_position_embeddings: number;
  pad_token_id: number | null;
  bos_token_id: number | null;
  /** A single id, or several (some Llama-family configs list more than one). */
  eos_token_id: number | number[] | null;
  /** Whether the output embedding shares the input embedding's weights. */
  tie_word_embeddings: boolean;
  /** Label names by id as strings ("0" → "toxic"), or null when the config has none. */
  id2label: Record<string, string> | null;
  label2id: Record<string, number> | null;
  /** Label names ordered by id (from `id2label`; [] when absent). */
  labels: string[];
  /** e.g. "multi_label_classification", or null. */
  problem_type: string | null;
  /** Stored weight dtype hint ("float32", "bfloat16"…; `torch_dtype` or newer `dtype`), or null. */
  torch_dtype: string | null;
  /** The file the config was read from ("<object>" when parsed from memory). */
  source: string;
  /** The whole parsed JSON, for fields not modelled here. */
  raw: Record<string, unknown>;
}

/** BERT and RoBERTa-style encoders (`model_type` bert, roberta, xlm-roberta, camembert). */
export interface BertConfig extends BaseModelConfig {
  family: "bert";
  /** Activation of the feed-forward block; "gelu" is the exact erf GELU. */
  hidden_act: string;
  type_vocab_size: number;
  layer_norm_eps: number;
  /** "absolute" is the only kind toxlora implements. */
  position_embedding_type: string;
  hidden_dropout_prob: number;
  attention_probs_dropout_prob: number;
  /** Dropout before the classifier; null means "use hidden_dropout_prob". */
  classifier_dropout: number | null;
  /** hidden_size / num_attention_heads. */
  head_dim: number;
  /**
   * True for RoBERTa-style models: position ids start at `pad_token_id + 1` (real tokens get
   * pad_token_id+1, +2, …; pad tokens get pad_token_id), instead of 0, 1, 2, … as in BERT.
   */
  roberta_positions: boolean;
}

/** Attention kind of one ModernBERT layer. */
export type ModernBertLayerType = "full_attention" | "sliding_attention";

/** ModernBERT encoders (`model_type` modernbert). */
export interface ModernBertConfig extends BaseModelConfig {
  family: "modernbert";
  /** Activation of the GeGLU MLP ("gelu" = exact GELU). */
  hidden_activation: string;
  norm_eps: number;
  norm_bias: boolean;
  attention_bias: boolean;
  mlp_bias: boolean;
  /** Bias of the MLM decoder (unused by classification). */
  decoder_bias: boolean;
  classifier_bias: boolean;
  classifier_activation: string;
  /** "cls" (first token) or "mean" (masked mean) before the head. */
  classifier_pooling: "cls" | "mean";
  classifier_dropout: number;
  embedding_dropout: number;
  attention_dropout: number;
  mlp_dropout: number;
  /** RoPE theta of global (full-attention) layers; also read from `rope_parameters.full_attention`. */
  global_rope_theta: number;
  /** RoPE theta of local (sliding-window) layers; also read from `rope_parameters.sliding_attention`. */
  local_rope_theta: number;
  /** Total local window; a token sees keys with |i-j| <= local_attention / 2. */
  local_attention: number;
  /** Layer i is global when i % global_attn_every_n_layers == 0. */
  global_attn_every_n_layers: number;
  /** One entry per layer (from config.json's `layer_types`, or derived from the rule above). */
  layer_types: ModernBertLayerType[];
  cls_token_id: number | null;
  sep_token_id: number | null;
  /** hidden_size / num_attention_heads. */
  head_dim: number;
}

/** RoPE scaling settings other than the plain default (e.g. {rope_type: "llama3", factor: 8, …}). */
export interface RopeScaling {
  rope_type: string;
  factor?: number;
  [key: string]: unknown;
}

/** Llama decoders (`model_type` llama; e.g. the llm-jp-3 family). */
export interface LlamaConfig extends BaseModelConfig {
  family: "llama";
  /** Number of key/value heads (grouped-query attention); equals num_attention_heads when absent. */
  num_key_value_heads: number;
  /** Size of one attention head; hidden_size / num_attention_heads when absent. */
  head_dim: number;
  /** MLP activation ("silu"). */
  hidden_act: string;
  rms_norm_eps: number;
  /** RoPE base; from `rope_theta` or newer `rope_parameters.rope_theta`. */
  rope_theta: number;
  /** Non-default RoPE scaling (`rope_scaling` or `rope_parameters`), or null for plain RoPE. */
  rope_scaling: RopeScaling | null;
  attention_bias: boolean;
  mlp_bias: boolean;
  attention_dropout: number;
  pretraining_tp: number;
}

/** A parsed config of any supported architecture; switch on `family`. */
export type HfModelConfig = BertConfig | ModernBertConfig | LlamaConfig;

// ---------------------------------------------------------------------------------------------

const int = z.number().int();
const posInt = int.positive();
const nonNegInt = int.nonnegative();
const prob = z.number().min(0).max(1);
const tokenId = nonNegInt.nullable();

// Common fields; defaults are those of transformers' PretrainedConfig where it has one.
const commonShape = {
  model_type: z.string(),
  architectures: z.array(z.string()).nullable().default(null),
  pad_token_id: tokenId.optional(),
  bos_token_id: tokenId.optional(),
  eos_token_id: z
    .union([nonNegInt, z.array(nonNegInt)])
    .nullable()
    .optional(),
  tie_word_embeddings: z.boolean().optional(),
  id2label: z.record(z.string(), z.string()).nullable().default(null),
  label2id: z.record(z.string(), int).nullable().default(null),
  problem_type: z.string().nullable().default(null),
  torch_dtype: z.string().nullable().optional(),
  dtype: z.string().nullable().optional(),
};

const bertSchema = z.looseObject({
  ...commonShape,
  vocab_size: posInt.default(30522),
  hidden_size: posInt.default(768),
  num_hidden_layers: posInt.default(12),
  num_attention_heads: posInt.default(12),
  intermediate_size: posInt.default(3072),
  hidden_act: z.string().default("gelu"),
  hidden_dropout_prob: prob.default(0.1),
  attention_probs_dropout_prob: prob.default(0.1),
  max_position_embeddings: posInt.default(512),
  type_vocab_size: posInt.default(2),
  layer_norm_eps: z.number().positive().default(1e-12),
  position_embedding_type: z.string().default("absolute"),
  classifier_dropout: prob.nullable().default(null),
});

const ropeParams = z.looseObject({
  rope_type: z.string().optional(),
  type: z.string().optional(),
  rope_theta: z.number().positive().optional(),
  factor: z.number().optional(),
});

const modernBertSchema = z.looseObject({
  ...commonShape,
  vocab_size: posInt.default(50368),
  hidden_size: posInt.default(768),
  intermediate_size: posInt.default(1152),
  num_hidden_layers: posInt.default(22),
  num_attention_heads: posInt.default(12),
  hidden_activation: z.string().default("gelu"),
  max_position_embeddings: posInt.default(8192),
  norm_eps: z.number().positive().default(1e-5),
  norm_bias: z.boolean().default(false),
  attention_bias: z.boolean().default(false),
  attention_dropout: prob.default(0),
  mlp_bias: z.boolean().default(false),
  mlp_dropout: prob.default(0),
  embedding_dropout: prob.default(0),
  decoder_bias: z.boolean().default(true),
  classifier_pooling: z.enum(["cls", "mean"]).default("cls"),
  classifier_dropout: prob.default(0),
  classifier_bias: z.boolean().default(false),
  classifier_activation: z.string().default("gelu"),
  global_rope_theta: z.number().positive().optional(),
  local_rope_theta: z.number().positive().optional(),
  rope_parameters: z
    .looseObject({ full_attention: ropeParams.optional(), sliding_attention: ropeParams.optional() })
    .nullable()
    .optional(),
  rope_scaling: ropeParams.nullable().optional(),
  local_attention: posInt.default(128),
  global_attn_every_n_layers: posInt.default(3),
  layer_types: z
    .array(z.enum(["full_attention", "sliding_attention"]))
    .nullable()
    .optional(),
  cls_token_id: tokenId.default(50281),
  sep_token_id: tokenId.default(50282),
});

const llamaSchema = z.looseObject({
  ...commonShape,
  vocab_size: posInt.default(32000),
  hidden_size: posInt.default(4096),
  intermediate_size: posInt.default(11008),
  num_hidden_layers: posInt.default(32),
  num_attention_heads: posInt.default(32),
  num_key_value_heads: posInt.nullable().optional(),
  head_dim: posInt.nullable().optional(),
  hidden_act: z.string().default("silu"),
  max_position_embeddings: posInt.default(2048),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().optional(),
  rope_scaling: ropeParams.nullable().optional(),
  rope_parameters: ropeParams.nullable().optional(),
  attention_bias: z.boolean().default(false),
  attention_dropout: prob.default(0),
  mlp_bias: z.boolean().default(false),
  pretraining_tp: posInt.default(1),
});

/** Line (1-based) of the first `"field":` in the JSON text, for error messages. */
function lineOf(text: string | undefined, field: string | number | undefined): number | undefined {
  if (!text || typeof field !== "string") return undefined;
  const at = text.search(new RegExp(`"${field.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"\\s*:`));
  return at < 0 ? undefined : text.slice(0, at).split("\n").length;
}

function zodMessage(err: z.ZodError, source: string, text: string | undefined): string {
  const lines = err.issues.map((iss) => {
    const field = iss.path.map(String).join(".");
    const line = lineOf(text, iss.path[0] as string | number | undefined);
    return `${source}${line ? `:${line}` : ""}: field "${field}": ${iss.message}`;
  });
  return lines.join("\n");
}

/**
 * Reads a JSON file; a syntax error names the file and the line and column.
 * @returns the parsed value and the original text (used to locate fields in later errors)
 */
export async function readJsonFile(file: string): Promise<{ value: unknown; text: string }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new Error(
      `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  try {
    return { value: JSON.parse(text), text };
  } catch (err) {
    const msg = (err as Error).message;
    const pos = /position (\d+)/.exec(msg);
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split("\n").length;
      const col = before.length - before.lastIndexOf("\n");
      throw new Error(`${file}:${line}:${col}: invalid JSON (${msg})`);
    }
    throw new Error(`${file}: invalid JSON (${msg})`);
  }
}

function labelsOf(id2label: Record<string, string> | null, source: string): string[] {
  if (!id2label) return [];
  const n = Object.keys(id2label).length;
  const labels: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = id2label[String(i)];
    if (name === undefined) {
      throw new Error(`${source}: field "id2label": ids must be 0..${n - 1}, but "${i}" is missing`);
    }
    labels.push(name);
  }
  return labels;
}

/** Sizes every architecture parses itself (its own defaults differ). */
type SizeFields =
  | "vocab_size"
  | "hidden_size"
  | "num_hidden_layers"
  | "num_attention_heads"
  | "intermediate_size"
  | "max_position_embeddings";

function base<F extends ModelFamily>(
  family: F,
  c: z.infer<z.ZodObject<typeof commonShape>> & Record<string, unknown>,
  source: string,
  raw: Record<string, unknown>,
  defaults: { pad: number | null; bos: number | null; eos: number | null; tie: boolean },
): Omit<BaseModelConfig, SizeFields | "family"> & { family: F } {
  return {
    family,
    model_type: c.model_type,
    architectures: c.architectures ?? [],
    pad_token_id: c.pad_token_id === undefined ? defaults.pad : c.pad_token_id,
    bos_token_id: c.bos_token_id === undefined ? defaults.bos : c.bos_token_id,
    eos_token_id: c.eos_token_id === undefined ? defaults.eos : c.eos_token_id,
    tie_word_embeddings: c.tie_word_embeddings ?? defaults.tie,
    id2label: c.id2label,
    label2id: c.label2id,
    labels: labelsOf(c.id2label, source),
    problem_type: c.problem_type,
    torch_dtype: c.torch_dtype ?? c.dtype ?? null,
    source,
    raw,
  };
}

function headDivides(hidden: number, heads: number, source: string): number {
  if (hidden % heads !== 0) {
    throw new Error(`${source}: hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`);
  }
  return hidden / heads;
}

function parseWith<T extends z.ZodType>(schema: T, json: unknown, source: string, text?: string): z.infer<T> {
  const r = schema.safeParse(json);
  if (!r.success) throw new Error(zodMessage(r.error, source, text));
  return r.data;
}

/**
 * Validates a parsed `config.json` object and returns the typed config of its architecture.
 * Throws naming the file, the line and the field for wrong values, and naming the supported
 * types for an unsupported `model_type`.
 *
 * @param json the parsed JSON
 * @param source file name used in error messages
 * @param text the JSON text, if available, to report line numbers
 */
export function parseHfConfig(json: unknown, source = "<object>", text?: string): HfModelConfig {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new Error(`${source}: a model config must be a JSON object`);
  }
  const raw = json as Record<string, unknown>;
  const modelType = raw.model_type;
  const supported = Object.keys(SUPPORTED_MODEL_TYPES).join(", ");
  if (typeof modelType !== "string") {
    throw new Error(`${source}: field "model_type" is missing or not a string (supported: ${supported})`);
  }
  const family = SUPPORTED_MODEL_TYPES[modelType];
  if (!family) {
    const line = lineOf(text, "model_type");
    throw new Error(
      `${source}${line ? `:${line}` : ""}: model_type "${modelType}" is not supported; toxlora supports ${supported}`,
    );
  }

  if (family === "bert") {
    const c = parseWith(bertSchema, json, source, text);
    const roberta = modelType !== "bert";
    return {
      ...base("bert", c, source, raw, {
        pad: roberta ? 1 : 0,
        bos: roberta ? 0 : null,
        eos: roberta ? 2 : null,
        tie: true,
      }),
      vocab_size: c.vocab_size,
      hidden_size: c.hidden_size,
      num_hidden_layers: c.num_hidden_layers,
      num_attention_heads: c.num_attention_heads,
      intermediate_size: c.intermediate_size,
      max_position_embeddings: c.max_position_embeddings,
      hidden_act: c.hidden_act,
      type_vocab_size: c.type_vocab_size,
      layer_norm_eps: c.layer_norm_eps,
      position_embedding_type: c.position_embedding_type,
      hidden_dropout_prob: c.hidden_dropout_prob,
      attention_probs_dropout_prob: c.attention_probs_dropout_prob,
      classifier_dropout: c.classifier_dropout,
      head_dim: headDivides(c.hidden_size, c.num_attention_heads, source),
      roberta_positions: roberta,
    };
  }

  if (family === "modernbert") {
    const c = parseWith(modernBertSchema, json, source, text);
    const rp = c.rope_parameters ?? undefined;
    // Only plain RoPE is implemented for ModernBERT: refuse scaled variants instead of ignoring them.
    for (const [field, p] of [
      ["rope_scaling", c.rope_scaling],
      ["rope_parameters.full_attention", rp?.full_attention],
      ["rope_parameters.sliding_attention", rp?.sliding_attention],
    ] as const) {
      const kind = p?.rope_type ?? p?.type ?? "default";
      if (kind !== "default") {
        throw new Error(
          `${source}: field "${field}" asks for RoPE type "${kind}"; toxlora implements plain RoPE only`,
        );
      }
    }
    const every = c.global_attn_every_n_layers;
    const layerTypes: ModernBertLayerType[] =
      c.layer_types ??
      Array.from({ length: c.num_hidden_layers }, (_, i) =>
        i % every === 0 ? "full_attention" : "sliding_attention",
      );
    if (layerTypes.length !== c.num_hidden_layers) {
      throw new Error(
        `${source}: field "layer_types" has ${layerTypes.length} entries but num_hidden_layers is ${c.num_hidden_layers}`,
      );
    }
    return {
      ...base("modernbert", c, source, raw, { pad: 50283, bos: 50281, eos: 50282, tie: true }),
      vocab_size: c.vocab_size,
      hidden_size: c.hidden_size,
      num_hidden_layers: c.num_hidden_layers,
      num_attention_heads: c.num_attention_heads,
      intermediate_size: c.intermediate_size,
      max_position_embeddings: c.max_position_embeddings,
      hidden_activation: c.hidden_activation,
      norm_eps: c.norm_eps,
      norm_bias: c.norm_bias,
      attention_bias: c.attention_bias,
      mlp_bias: c.mlp_bias,
      decoder_bias: c.decoder_bias,
      classifier_bias: c.classifier_bias,
      classifier_activation: c.classifier_activation,
      classifier_pooling: c.classifier_pooling,
      classifier_dropout: c.classifier_dropout,
      embedding_dropout: c.embedding_dropout,
      attention_dropout: c.attention_dropout,
      mlp_dropout: c.mlp_dropout,
      global_rope_theta: c.global_rope_theta ?? rp?.full_attention?.rope_theta ?? 160000,
      local_rope_theta: c.local_rope_theta ?? rp?.sliding_attention?.rope_theta ?? 10000,
      local_attention: c.local_attention,
      global_attn_every_n_layers: every,
      layer_types: layerTypes,
      cls_token_id: c.cls_token_id,
      sep_token_id: c.sep_token_id,
      head_dim: headDivides(c.hidden_size, c.num_attention_heads, source),
    };
  }

  const c = parseWith(llamaSchema, json, source, text);
  const kvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % kvHeads !== 0) {
    throw new Error(
      `${source}: num_attention_heads ${c.num_attention_heads} is not a multiple of num_key_value_heads ${kvHeads}`,
    );
  }
  // As in transformers: head_dim defaults to hidden_size // num_attention_heads (floor division).
  const headDim = c.head_dim ?? Math.floor(c.hidden_size / c.num_attention_heads);
  // Older configs: rope_theta + rope_scaling {type|rope_type, factor…}; newer: rope_parameters
  // {rope_type, rope_theta, factor…}. Both end up as rope_theta + rope_scaling (null = plain RoPE).
  const rp = c.rope_parameters ?? undefined;
  const scalingSrc = c.rope_scaling ?? rp;
  let ropeScaling: RopeScaling | null = null;
  if (scalingSrc) {
    const { rope_theta: _theta, type, rope_type, ...rest } = scalingSrc;
    const kind = rope_type ?? type ?? "default";
    if (kind !== "default") ropeScaling = { ...rest, rope_type: kind };
  }
  return {
    ...base("llama", c, source, raw, { pad: null, bos: 1, eos: 2, tie: false }),
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    intermediate_size: c.intermediate_size,
    max_position_embeddings: c.max_position_embeddings,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    hidden_act: c.hidden_act,
    rms_norm_eps: c.rms_norm_eps,
    rope_theta: c.rope_theta ?? rp?.rope_theta ?? 10000,
    rope_scaling: ropeScaling,
    attention_bias: c.attention_bias,
    mlp_bias: c.mlp_bias,
    attention_dropout: c.attention_dropout,
    pretraining_tp: c.pretraining_tp,
  };
}

/**
 * Reads and validates `config.json` from a model folder (or a path to the JSON file itself).
 *
 * @example
 * const cfg = await readHfConfig("/models/modernbert-ja-130m");
 * if (cfg.family === "modernbert") console.log(cfg.layer_types, cfg.local_rope_theta);
 */
export async function readHfConfig(dirOrFile: string): Promise<HfModelConfig> {
  let file = dirOrFile;
  try {
    if ((await stat(dirOrFile)).isDirectory()) file = path.join(dirOrFile, "config.json");
  } catch {
    throw new Error(`${dirOrFile}: no such model folder or config file`);
  }
  const { value, text } = await readJsonFile(file);
  return parseHfConfig(value, file, text);
}
