// PEFT LoRA adapters on disk: `adapter_config.json` + `adapter_model.safetensors`, in exactly
// the format Python PEFT saves and loads, so adapters move freely between toxlora and PEFT.
//
// Module paths are names inside the *ForSequenceClassification model, as PEFT sees them:
// backbone modules carry transformers' `base_model_prefix` (see BASE_MODEL_PREFIX), e.g.
// "bert.encoder.layer.0.attention.self.query", "model.layers.0.self_attn.q_proj", while the head
// sits at the root ("classifier", "score", "head.dense"). Saved keys add "base_model.model.":
//   base_model.model.<module>.lora_A.weight  [r, in]
//   base_model.model.<module>.lora_B.weight  [out, r]
//   base_model.model.<module>.<param>        (modules_to_save copies, e.g. classifier.weight)
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { writeJsonAtomic } from "./atomic.js";
import { readJsonFile } from "./hf-config.js";
import { type F32Tensor, openSafetensors, writeSafetensors } from "./safetensors.js";

/** File name of the adapter config. */
export const ADAPTER_CONFIG_NAME = "adapter_config.json";
/** File name of the adapter weights. */
export const ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors";
/** Prefix PEFT puts before every saved key. */
export const PEFT_PREFIX = "base_model.model.";
/** PEFT's shorthand for "every linear layer except the output head". */
export const ALL_LINEAR = "all-linear";

/**
 * transformers' `base_model_prefix` per `model_type`: the attribute under which a
 * *ForSequenceClassification model keeps its backbone. A backbone module's PEFT path is
 * `${BASE_MODEL_PREFIX[model_type]}.${path inside the backbone}` (bert →
 * "bert.encoder.layer.0…", llama and modernbert → "model.layers.0…").
 */
export const BASE_MODEL_PREFIX: Readonly<Record<string, string>> = {
  bert: "bert",
  roberta: "roberta",
  "xlm-roberta": "roberta",
  camembert: "roberta",
  modernbert: "model",
  llama: "model",
};

/**
 * A PEFT `LoraConfig` as stored in `adapter_config.json` (field names as in PEFT). Fields PEFT
 * has but toxlora does not use are kept as read (index signature) and written back unchanged.
 */
export interface LoraAdapterConfig {
  peft_type: "LORA";
  /** "SEQ_CLS" for toxlora's classifiers. */
  task_type: string | null;
  base_model_name_or_path: string | null;
  revision: string | null;
  /** LoRA rank. */
  r: number;
  lora_alpha: number;
  /** Dropout applied to the LoRA branch input during training. */
  lora_dropout: number;
  /** Scaling alpha/sqrt(r) instead of alpha/r. */
  use_rslora: boolean;
  /** Module names (suffix match), a regex (full match), "all-linear", or null. */
  target_modules: string[] | string | null;
  /** Modules never to adapt (same matching rules as target_modules). */
  exclude_modules: string[] | string | null;
  /** Modules trained in full and saved in the adapter (the classification head). */
  modules_to_save: string[] | null;
  bias: "none" | "all" | "lora_only";
  fan_in_fan_out: boolean;
  init_lora_weights: boolean | string;
  inference_mode: boolean;
  layers_to_transform: number[] | number | null;
  layers_pattern: string[] | string | null;
  /** Per-module rank overrides: regex (suffix match, see {@link loraRank}) → r. */
  rank_pattern: Record<string, number>;
  /** Per-module alpha overrides: regex → alpha. */
  alpha_pattern: Record<string, number>;
  use_dora: boolean;
  lora_bias: boolean;
  [field: string]: unknown;
}

const nullableStrings = z
  .union([z.array(z.string()), z.string()])
  .nullable()
  .default(null);

const loraSchema = z.looseObject({
  peft_type: z.string(),
  task_type: z.string().nullable().default(null),
  base_model_name_or_path: z.string().nullable().default(null),
  revision: z.string().nullable().default(null),
  r: z.number().int().positive().default(8),
  lora_alpha: z.number().positive().default(8),
  lora_dropout: z.number().min(0).lt(1).default(0),
  use_rslora: z.boolean().default(false),
  target_modules: nullableStrings,
  exclude_modules: nullableStrings,
  modules_to_save: z.array(z.string()).nullable().default(null),
  bias: z.enum(["none", "all", "lora_only"]).default("none"),
  fan_in_fan_out: z.boolean().default(false),
  init_lora_weights: z.union([z.boolean(), z.string()]).default(true),
  inference_mode: z.boolean().default(false),
  layers_to_transform: z
    .union([z.array(z.number().int()), z.number().int()])
    .nullable()
    .default(null),
  layers_pattern: nullableStrings,
  rank_pattern: z.record(z.string(), z.number().int().positive()).nullable().default({}),
  alpha_pattern: z.record(z.string(), z.number().positive()).nullable().default({}),
  use_dora: z.boolean().default(false),
  lora_bias: z.boolean().default(false),
});

// PEFT options that change what the adapter computes in ways toxlora does not implement.
const UNSUPPORTED: [field: string, isSet: (v: unknown) => boolean, why: string][] = [
  ["use_dora", (v) => v === true, "DoRA adapters"],
  ["lora_bias", (v) => v === true, "a bias on lora_B"],
  ["fan_in_fan_out", (v) => v === true, "GPT-2 style Conv1D weights"],
  ["target_parameters", (v) => v != null && !(Array.isArray(v) && v.length === 0), "LoRA on raw parameters"],
  ["layer_replication", (v) => v != null, "layer replication"],
  ["trainable_token_indices", (v) => v != null, "trainable token indices"],
];

/**
 * Validates an adapter config object (as parsed from `adapter_config.json`), fills PEFT's
 * defaults for missing fields, and rejects adapters toxlora cannot run (non-LoRA PEFT types,
 * DoRA, lora_bias, fan_in_fan_out…) with an error naming the file and field.
 */
export function parseLoraConfig(json: unknown, source = "<object>"): LoraAdapterConfig {
  const r = loraSchema.safeParse(json);
  if (!r.success) {
    throw new Error(
      r.error.issues.map((i) => `${source}: field "${i.path.join(".")}": ${i.message}`).join("\n"),
    );
  }
  const c = r.data;
  if (c.peft_type !== "LORA") {
    throw new Error(
      `${source}: field "peft_type" is "${c.peft_type}"; toxlora reads LoRA adapters ("LORA") only`,
    );
  }
  for (const [field, isSet, why] of UNSUPPORTED) {
    if (isSet(c[field])) {
      throw new Error(
        `${source}: field "${field}" is ${JSON.stringify(c[field])}: ${why} are not supported by toxlora`,
      );
    }
  }
  return {
    ...c,
    peft_type: "LORA",
    rank_pattern: c.rank_pattern ?? {},
    alpha_pattern: c.alpha_pattern ?? {},
  };
}

/**
 * A complete LoRA config with PEFT's defaults (and task_type "SEQ_CLS"), overridden by `fields`.
 *
 * @example
 * const cfg = loraConfig({ r: 16, lora_alpha: 32, lora_dropout: 0.05,
 *   target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"], modules_to_save: ["score"],
 *   base_model_name_or_path: "llm-jp/llm-jp-3-1.8b" });
 */
export function loraConfig(fields: Partial<LoraAdapterConfig> = {}): LoraAdapterConfig {
  return parseLoraConfig({
    peft_type: "LORA",
    task_type: "SEQ_CLS",
    auto_mapping: null,
    megatron_config: null,
    megatron_core: "megatron.core",
    ...fields,
  });
}

// ---------------------------------------------------------------------------------------------
// Keys

/** Kind of a tensor in an adapter file. */
export type AdapterKeyKind = "lora_A" | "lora_B" | "module";

/** A parsed adapter key (see {@link parseAdapterKey}). */
export interface AdapterKey {
  /** Module path inside the *ForSequenceClassification model, e.g. "bert.pooler.dense" or "classifier". */
  modulePath: string;
  /** LoRA factor, or "module" for a full parameter saved through modules_to_save. */
  kind: AdapterKeyKind;
  /** Parameter name within the module ("weight" or "bias"). */
  param: string;
}

/** Adapter key of a LoRA factor: `base_model.model.<modulePath>.lora_A.weight` (or lora_B). */
export function loraKey(modulePath: string, factor: "A" | "B"): string {
  return `${PEFT_PREFIX}${modulePath}.lora_${factor}.weight`;
}

/** Adapter key of a fully saved parameter (modules_to_save), e.g. "classifier.weight" → "base_model.model.classifier.weight". */
export function savedParamKey(paramName: string): string {
  return `${PEFT_PREFIX}${paramName}`;
}

/**
 * Splits an adapter key into module path, kind and parameter name. Throws for keys without the
 * `base_model.model.` prefix and for LoRA variants toxlora does not implement (embedding LoRA,
 * DoRA magnitude vectors, LoRA biases).
 *
 * @example
 * parseAdapterKey("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
 * // → { modulePath: "model.layers.0.self_attn.q_proj", kind: "lora_A", param: "weight" }
 * parseAdapterKey("base_model.model.classifier.bias")
 * // → { modulePath: "classifier", kind: "module", param: "bias" }
 */
export function parseAdapterKey(key: string): AdapterKey {
  if (!key.startsWith(PEFT_PREFIX)) {
    throw new Error(
      `adapter key "${key}" does not start with "${PEFT_PREFIX}" (not a PEFT LoRA adapter key)`,
    );
  }
  const parts = key.slice(PEFT_PREFIX.length).split(".");
  if (parts.length < 2 || parts.some((p) => p === "")) throw new Error(`adapter key "${key}" is malformed`);
  const param = parts[parts.length - 1];
  const owner = parts[parts.length - 2];
  if (owner === "lora_A" || owner === "lora_B") {
    if (param !== "weight")
      throw new Error(`adapter key "${key}": LoRA ${param} tensors (lora_bias) are not supported`);
    if (parts.length < 3) throw new Error(`adapter key "${key}" has no module path`);
    return { modulePath: parts.slice(0, -2).join("."), kind: owner, param };
  }
  if (parts.some((p) => p.startsWith("lora_"))) {
    throw new Error(`adapter key "${key}": this LoRA variant (embedding LoRA, DoRA…) is not supported`);
  }
  return { modulePath: parts.slice(0, -1).join("."), kind: "module", param };
}

// ---------------------------------------------------------------------------------------------
// Matching (PEFT's rules, from peft/tuners/tuners_utils.py and peft/utils/other.py)

const regexCache = new Map<string, RegExp>();

/** Compiles a Python regex as JS, anchored as `re.fullmatch` (named groups translated). */
function fullMatchRegex(pattern: string, prefix = "", suffix = ""): RegExp {
  const cacheKey = `${prefix}\u0000${pattern}\u0000${suffix}`;
  let re = regexCache.get(cacheKey);
  if (!re) {
    const js = pattern
      .replace(/\(\?P</g, "(?<")
      .replace(/\(\?P=(\w+)\)/g, "\\k<$1>")
      .replace(/\\A/g, "^")
      .replace(/\\Z/g, "$");
    try {
      re = new RegExp(`^(?:${prefix}(?:${js})${suffix})$`);
    } catch (err) {
      throw new Error(`invalid module regex ${JSON.stringify(pattern)}: ${(err as Error).message}`);
    }
    regexCache.set(cacheKey, re);
  }
  return re;
}

/** Whether `target` is PEFT's "all-linear" shorthand (case-insensitive). */
export function isAllLinear(target: unknown): target is string {
  return typeof target === "string" && target.toLowerCase() === ALL_LINEAR;
}

/**
 * PEFT's `target_modules` test for one module path: with a list, the path equals an entry or ends
 * with "." + entry (so "dense" matches "bert.pooler.dense"); with a string, the string is a regex
 * that must match the whole path (`re.fullmatch`). "all-linear" must be expanded to the model's
 * linear layer names first (it depends on the model), so it throws here.
 */
export function matchesTargetModules(
  modulePath: string,
  targetModules: string[] | string | null | undefined,
): boolean {
  if (targetModules == null) return false;
  if (typeof targetModules === "string") {
    if (isAllLinear(targetModules)) {
      throw new Error(
        `target_modules "${ALL_LINEAR}" depends on the model: expand it to the names of its linear layers (without the head) first`,
      );
    }
    return fullMatchRegex(targetModules).test(modulePath);
  }
  return targetModules.some((t) => modulePath === t || modulePath.endsWith(`.${t}`));
}

/** Layer index for layers_to_transform: first "<name>.<digits>." after some prefix, as PEFT finds it. */
function layerIndexOf(modulePath: string, layersPattern: string[] | string | null): number | undefined {
  const patterns = layersPattern == null || layersPattern.length === 0 ? null : [layersPattern].flat();
  if (!patterns) {
    const m = /^.*?\.[^.]*\.(\d+)\./.exec(modulePath);
    return m ? Number(m[1]) : undefined;
  }
  for (const p of patterns) {
    const m = new RegExp(`^.*?\\.(?:${p})\\.(\\d+)\\.`).exec(modulePath);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/**
 * Whether PEFT puts a LoRA adapter on this module, with everything `check_target_module_exists`
 * considers: `exclude_modules`, never a `modules_to_save` module, `target_modules`, and
 * `layers_to_transform` / `layers_pattern` (list targets only, as in PEFT).
 *
 * @param modulePath path inside the *ForSequenceClassification model (see {@link BASE_MODEL_PREFIX})
 */
export function isLoraTarget(
  modulePath: string,
  config: Pick<LoraAdapterConfig, "target_modules"> & Partial<LoraAdapterConfig>,
): boolean {
  const ex = config.exclude_modules;
  if (ex != null && ex.length > 0 && matchesTargetModules(modulePath, ex)) return false;
  for (const m of config.modules_to_save ?? []) {
    // PEFT: re.match(rf"(^|.*\.){m}($|\..*)", key)
    if (fullMatchRegex(m, "(?:^|.*\\.)", "(?:$|\\..*)").test(modulePath)) return false;
  }
  const targets = config.target_modules;
  if (!matchesTargetModules(modulePath, targets)) return false;
  if (typeof targets === "string" || targets?.includes(modulePath)) return true;
  const layers = config.layers_to_transform;
  if (layers == null || (Array.isArray(layers) && layers.length === 0)) return true;
  const idx = layerIndexOf(modulePath, config.layers_pattern ?? null);
  if (idx === undefined) return false;
  return Array.isArray(layers) ? layers.includes(idx) : layers === idx;
}

/**
 * Whether a module is wrapped by PEFT's modules_to_save (trained in full and saved in the
 * adapter): its path ends with one of the names (plain `str.endswith`, as PEFT's _set_trainable).
 */
export function isModuleToSave(
  modulePath: string,
  modulesToSave: readonly string[] | null | undefined,
): boolean {
  return (modulesToSave ?? []).some((m) => modulePath.endsWith(m));
}

/**
 * Whether a parameter (e.g. "head.norm.weight") belongs to a modules_to_save module, i.e. is
 * trained in full and stored in the adapter: the module owning it, or any module above it,
 * passes {@link isModuleToSave}.
 */
export function isSavedParam(
  paramName: string,
  modulesToSave: readonly string[] | null | undefined,
): boolean {
  const parts = paramName.split(".");
  for (let n = parts.length - 1; n >= 1; n--) {
    if (isModuleToSave(parts.slice(0, n).join("."), modulesToSave)) return true;
  }
  return false;
}

/** First rank_pattern / alpha_pattern key matching the module, as PEFT's get_pattern_key. */
function patternValue(pattern: Record<string, number>, modulePath: string): number | undefined {
  for (const [key, value] of Object.entries(pattern)) {
    // PEFT: re.match(rf"(.*\.)?({key})$", module_path)
    if (fullMatchRegex(key, "(?:.*\\.)?(?:", ")").test(modulePath)) return value;
  }
  return undefined;
}

/** LoRA rank of a module: its `rank_pattern` entry if one matches, else `r`. */
export function loraRank(config: Pick<LoraAdapterConfig, "r" | "rank_pattern">, modulePath: string): number {
  return patternValue(config.rank_pattern ?? {}, modulePath) ?? config.r;
}

/** LoRA alpha of a module: its `alpha_pattern` entry if one matches, else `lora_alpha`. */
export function loraAlpha(
  config: Pick<LoraAdapterConfig, "lora_alpha" | "alpha_pattern">,
  modulePath: string,
): number {
  return patternValue(config.alpha_pattern ?? {}, modulePath) ?? config.lora_alpha;
}

/** Factor multiplying B·A·x for a module: alpha / r, or alpha / sqrt(r) with use_rslora. */
export function loraScaling(
  config: Pick<LoraAdapterConfig, "r" | "rank_pattern" | "lora_alpha" | "alpha_pattern" | "use_rslora">,
  modulePath: string,
): number {
  const r = loraRank(config, modulePath);
  const alpha = loraAlpha(config, modulePath);
  return config.use_rslora ? alpha / Math.sqrt(r) : alpha / r;
}

// ---------------------------------------------------------------------------------------------
// Read / write

/** The two factors of one adapted module. */
export interface LoraPair {
  /** lora_A.weight, shape [r, in]. */
  A: F32Tensor;
  /** lora_B.weight, shape [out, r]. */
  B: F32Tensor;
}

/** An adapter as read from disk. */
export interface LoraAdapter {
  config: LoraAdapterConfig;
  /** Every tensor of adapter_model.safetensors by its saved key, as float32. */
  tensors: Map<string, F32Tensor>;
  /** LoRA factors by module path (e.g. "model.layers.0.self_attn.q_proj"). */
  lora: Map<string, LoraPair>;
  /** modules_to_save parameters by parameter name (e.g. "classifier.weight", "head.dense.weight"). */
  saved: Map<string, F32Tensor>;
}

type TensorLike = { data: Float32Array; shape: readonly number[] };

/** Checks keys and the [r,in] / [out,r] shapes; groups tensors by module. */
function organize(
  config: LoraAdapterConfig,
  tensors: ReadonlyMap<string, TensorLike>,
  source: string,
): { lora: Map<string, LoraPair>; saved: Map<string, F32Tensor> } {
  const halves = new Map<string, { A?: F32Tensor; B?: F32Tensor }>();
  const saved = new Map<string, F32Tensor>();
  for (const [key, t] of tensors) {
    let k: AdapterKey;
    try {
      k = parseAdapterKey(key);
    } catch (err) {
      throw new Error(`${source}: ${(err as Error).message}`);
    }
    const tensor = { data: t.data, shape: [...t.shape] };
    if (t.data.length !== t.shape.reduce((a, b) => a * b, 1)) {
      throw new Error(
        `${source}: tensor "${key}" has ${t.data.length} values but shape [${t.shape.join(", ")}]`,
      );
    }
    if (k.kind === "module") {
      saved.set(`${k.modulePath}.${k.param}`, tensor);
      continue;
    }
    const h = halves.get(k.modulePath) ?? {};
    h[k.kind === "lora_A" ? "A" : "B"] = tensor;
    halves.set(k.modulePath, h);
  }
  const lora = new Map<string, LoraPair>();
  for (const [mod, { A, B }] of halves) {
    if (!A || !B) {
      const missing = loraKey(mod, A ? "B" : "A");
      throw new Error(`${source}: "${missing}" is missing (every LoRA module needs lora_A and lora_B)`);
    }
    const r = loraRank(config, mod);
    if (A.shape.length !== 2 || A.shape[0] !== r) {
      throw new Error(
        `${source}: "${loraKey(mod, "A")}" has shape [${A.shape.join(", ")}], expected [${r}, in] (r = ${r})`,
      );
    }
    if (B.shape.length !== 2 || B.shape[1] !== r) {
      throw new Error(
        `${source}: "${loraKey(mod, "B")}" has shape [${B.shape.join(", ")}], expected [out, ${r}] (r = ${r})`,
      );
    }
    lora.set(mod, { A, B });
  }
  return { lora, saved };
}

/**
 * Reads a PEFT LoRA adapter folder (`adapter_config.json` + `adapter_model.safetensors`).
 * Validates the config, every key and the LoRA shapes against `r` / `rank_pattern`.
 *
 * @example
 * const { config, lora, saved } = await readAdapter("runs/2024-06-01/adapter");
 * for (const [modulePath, { A, B }] of lora) console.log(modulePath, A.shape, B.shape,
 *   loraScaling(config, modulePath));
 */
export async function readAdapter(dir: string): Promise<LoraAdapter> {
  const cfgFile = path.join(dir, ADAPTER_CONFIG_NAME);
  const weightsFile = path.join(dir, ADAPTER_WEIGHTS_NAME);
  const exists = async (p: string) =>
    stat(p).then(
      () => true,
      () => false,
    );
  if (!(await exists(cfgFile)))
    throw new Error(`${dir}: no ${ADAPTER_CONFIG_NAME} (not a PEFT adapter folder)`);
  if (!(await exists(weightsFile))) {
    const names = await readdir(dir);
    const hint = names.includes("adapter_model.bin")
      ? " It has adapter_model.bin (PyTorch pickle), which toxlora does not read: save with safe_serialization=True."
      : "";
    throw new Error(`${dir}: no ${ADAPTER_WEIGHTS_NAME}.${hint}`);
  }
  const { value } = await readJsonFile(cfgFile);
  const config = parseLoraConfig(value, cfgFile);
  const st = await openSafetensors(weightsFile);
  const tensors = new Map<string, F32Tensor>();
  try {
    for (const key of st.keys()) tensors.set(key, await st.getF32(key));
  } finally {
    await st.close();
  }
  return { config, tensors, ...organize(config, tensors, weightsFile) };
}

/**
 * Writes a PEFT LoRA adapter folder atomically (each file via temp file + rename): the config
 * (PEFT defaults filled in, keys sorted like PEFT's `save_pretrained`) and the tensors as F32
 * with `{"format":"pt"}` metadata. Keys and shapes are validated as in {@link readAdapter}.
 *
 * @param tensors saved key → tensor; build keys with {@link loraKey} and {@link savedParamKey}
 *
 * @example
 * await writeAdapter("out/adapter", { r: 4, lora_alpha: 8, target_modules: ["query", "value"],
 *   modules_to_save: ["classifier"] }, new Map([
 *   [loraKey("bert.encoder.layer.0.attention.self.query", "A"), { data: a, shape: [4, 768] }],
 *   [loraKey("bert.encoder.layer.0.attention.self.query", "B"), { data: b, shape: [768, 4] }],
 *   [savedParamKey("classifier.weight"), { data: w, shape: [7, 768] }],
 * ]));
 */
export async function writeAdapter(
  dir: string,
  config: Partial<LoraAdapterConfig>,
  tensors: ReadonlyMap<string, TensorLike> | Record<string, TensorLike>,
): Promise<void> {
  const full = loraConfig(config);
  const map: ReadonlyMap<string, TensorLike> =
    tensors instanceof Map ? tensors : new Map(Object.entries(tensors as Record<string, TensorLike>));
  const weightsFile = path.join(dir, ADAPTER_WEIGHTS_NAME);
  organize(full, map, weightsFile);
  await writeSafetensors(
    weightsFile,
    new Map([...map].map(([k, t]) => [k, { data: t.data, shape: t.shape, dtype: "F32" as const }])),
    { format: "pt" },
  );
  await writeJsonAtomic(path.join(dir, ADAPTER_CONFIG_NAME), full, { sortKeys: true });
}
