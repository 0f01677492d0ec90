// One entry point for every architecture: `loadCheckpoint` reads config + weights, and
// `buildClassifier` adds a sequence classifier (backbone + LoRA + pooling + head) to a graph.
// The trainer, the predictor and `loadModel` all build their graphs through it.
//
// @example
// const ckpt = await loadCheckpoint("/models/llm-jp-3-1.8b");
// const g = new Graph();
// const m = buildClassifier(g, ckpt, {
//   head: { kind: "per-label-softmax", numLabels: 3 },
//   lora: loraConfig({ r: 16, lora_alpha: 32, lora_dropout: 0.05, target_modules: "all-linear" }),
//   training: true,
// });
// const loss = m.loss();                        // graph input "labels" [batch, 3]
// g.output("loss", loss);
// const opt = adamw(g, grad(loss, m.params), { weightDecay: 0.01 });
// const session = await TrainSession.create(g, opt, m.initial);

import { existsSync } from "node:fs";
import path from "node:path";
import { createRng } from "../data/random.js";
import {
  type Graph,
  initializerBytes,
  mul,
  type SessionOptions,
  scalar,
  type Tensor,
} from "../engine/index.js";
import { type HfModelConfig, readHfConfig } from "../io/hf-config.js";
import {
  BASE_MODEL_PREFIX,
  isAllLinear,
  type LoraAdapter,
  type LoraAdapterConfig,
  loraKey,
  savedParamKey,
} from "../io/peft.js";
import type { QuantizeOptions } from "../quant/weights.js";
import { bertModel } from "./bert.js";
import type { BackboneContext, BackboneInputs, CheckpointMode } from "./common.js";
import { classifierHead, type HeadContext, type HeadKind, type HeadSpec, poolOutputs } from "./heads.js";
import { llamaModel } from "./llama.js";
import { createLoraContext } from "./lora.js";
import { modernBertModel } from "./modernbert.js";
import { readQuantizedWeights } from "./quantized-load.js";
import { firstOf, readWeights, type WeightSource, withPrefixAlias } from "./weights.js";

/** File with a classification head under transformers names, looked for beside the checkpoint. */
export const HEAD_WEIGHTS_NAME = "head.safetensors";

/**
 * Above this many bytes of frozen weights, onnxruntime's weight pre-packing is turned off: it
 * keeps a second, GEMM-friendly copy of every matrix (training also keeps the original for the
 * backward matmuls), which doubles the memory of a multi-GB model for ~10 % speed
 * (bench/results/models.json).
 */
export const PREPACK_LIMIT_BYTES = 2e9;

/** Session options suited to a graph's size: pre-packing off for large models. */
export function sessionOptionsFor(g: Graph): SessionOptions {
  return initializerBytes(g) > PREPACK_LIMIT_BYTES ? { disablePrepacking: true } : {};
}

/** A checkpoint in memory: its config and its weights (float32). */
export interface LoadedCheckpoint {
  dir: string;
  config: HfModelConfig;
  /** Checkpoint tensors (and head.safetensors' ones, which take precedence), transformers names. */
  weights: WeightSource;
  /** How the backbone's linear weights are quantized; undefined = float32. */
  quantize?: QuantizeOptions;
}

// Tensors a classifier never reads: language-model / MLM output layers and non-float buffers.
const UNUSED_KEYS = [
  /^lm_head\./,
  /^cls\./,
  /^(model\.)?decoder\./,
  /position_ids$/,
  /rotary_emb\.inv_freq$/,
];

/**
 * Reads a Hugging Face checkpoint folder: config.json (unsupported model_type → clear error) and
 * the safetensors weights as float32 (LM heads and buffers skipped), plus a `head.safetensors`
 * beside them when there is one.
 */
export async function loadCheckpoint(
  dir: string,
  opts: LoadCheckpointOptions = {},
): Promise<LoadedCheckpoint> {
  const config = await readHfConfig(dir);
  const skip = (k: string) => UNUSED_KEYS.some((re) => re.test(k));
  const quantize = opts.quantize && opts.quantize.scheme !== "none" ? opts.quantize : undefined;
  const ckpt = quantize
    ? await readQuantizedWeights(dir, {
        quantize,
        skip,
        cacheDir: opts.quantCacheDir,
        onProgress: opts.onProgress,
        onNote: opts.onNote,
        onHashProgress: opts.onHashProgress,
      })
    : await readWeights(dir, { skip, onProgress: opts.onProgress });
  const headFile = path.join(dir, HEAD_WEIGHTS_NAME);
  const head = existsSync(headFile) ? await readWeights(headFile) : undefined;
  return { dir, config, weights: firstOf(head, ckpt), quantize };
}

export interface LoadCheckpointOptions {
  onProgress?: (done: number, total: number) => void;
  /**
   * Keep the backbone's linear weights quantized (QLoRA-style frozen base): quantized while
   * streaming, cached on disk. Default none (float32).
   */
  quantize?: QuantizeOptions;
  /** Cache folder for quantized weights (default: toxloraCacheDir()); null = no cache. */
  quantCacheDir?: string | null;
  /** Notes for the user (a quantized cache rebuilt, and why). */
  onNote?: (message: string) => void;
  /** Progress of hashing the checkpoint for the quantized cache's key (see checkpointHash). */
  onHashProgress?: (doneBytes: number, totalBytes: number) => void;
}

export interface ClassifierOptions {
  head: HeadSpec;
  /** LoRA settings; defaults to the adapter's config when an adapter is given; null = no LoRA. */
  lora?: LoraAdapterConfig | null;
  /** A PEFT adapter to start from (LoRA factors and head), as read by readAdapter. */
  adapter?: LoraAdapter;
  /** Training graph: LoRA dropout and the model's dropouts are active. Default false. */
  training?: boolean;
  /**
   * Gradient checkpointing: every transformer layer keeps only its input for the backward pass and
   * is recomputed there. true or "full": all of it (least memory, about one more forward pass of
   * time); "selective": the products with frozen weights are kept and the rest recomputed (more
   * memory, little more time). Gradients are the same.
   */
  gradientCheckpointing?: boolean | CheckpointMode;
  /** Fold LoRA into the frozen weights and freeze the head (prediction). Default false. */
  merged?: boolean;
  /** With `merged`: modify the checkpoint's arrays in place (saves memory; the checkpoint is used up). */
  mergeInPlace?: boolean;
  /** With `merged`: quantize each merged backbone weight (export --quantize). */
  quantizeMerged?: QuantizeOptions;
  /** With `merged`: the kernel of a quantized base's int8/int4 weights (see LoraContext). */
  baseKernel?: "matmulnbits" | "qgemm";
  /** Compute dtype; float32 is the only one implemented. */
  dtype?: "float32";
  /** Seed of fresh LoRA A matrices and fresh head weights. Default 0. */
  seed?: number;
  /** Llama pooling: the pad id whose rightmost non-occurrence is pooled (default config.pad_token_id). */
  padTokenId?: number | null;
  /** More head tensors under transformers names (e.g. a per-label-softmax head file). */
  headWeights?: WeightSource;
  /** BERT family: take token_type_ids as a graph input (default) or use type 0 everywhere. */
  tokenTypeInput?: boolean;
  /** Replaces the word embeddings the backbone reads (see BackboneInputs.embedWords; explain uses it). */
  embedWords?: BackboneInputs["embedWords"];
}

/** A sequence classifier added to a graph. */
export interface ClassifierGraph {
  config: HfModelConfig;
  /** Prefix of backbone names ("bert.", "model."…); PEFT module paths start with it. */
  prefix: string;
  inputs: { inputIds: Tensor; attentionMask: Tensor; tokenTypeIds?: Tensor };
  /** [batch, seq, hidden] */
  lastHiddenState: Tensor;
  /** [batch, hidden]: what the classifier layer reads. */
  pooled: Tensor;
  /** [batch, labels] (multilabel) or [batch, labels, 2] (per-label-softmax). */
  logits: Tensor;
  /** [batch, labels]: probability of each label. */
  probs: Tensor;
  head: HeadSpec;
  /** Trainable parameters (LoRA factors, then head), named by their PEFT adapter keys. Empty when merged. */
  params: Tensor[];
  /** Initial values of `params`, by name. */
  initial: Map<string, Float32Array>;
  /** Module paths with LoRA. */
  loraModules: string[];
  /** modules_to_save of an adapter holding this head. */
  modulesToSave: string[];
  /** Notes for the user (randomly initialised head tensors…). */
  warnings: string[];
  /** Mean loss of the head against float 0/1 labels; default: a new graph input "labels" [batch, labels]. */
  loss(labels?: Tensor): Tensor;
  /** The adapter_config.json fields describing this model's LoRA (all-linear resolved to module names). */
  adapterConfig(): Partial<LoraAdapterConfig>;
}

/** transformers' base_model_prefix + "." for a model_type. */
export function backbonePrefix(config: HfModelConfig): string {
  const p = BASE_MODEL_PREFIX[config.model_type];
  if (!p)
    throw new Error(`${config.source}: no base-model prefix known for model_type "${config.model_type}"`);
  return `${p}.`;
}

/**
 * Adds the classifier to `g`: inputs `input_ids`, `attention_mask` (and `token_type_ids` for the BERT
 * family), int64 [batch, seq]. Unsupported model types fail in readHfConfig with the list of
 * supported ones.
 */
export function buildClassifier(g: Graph, ckpt: LoadedCheckpoint, opts: ClassifierOptions): ClassifierGraph {
  const cfg = ckpt.config;
  if (opts.dtype && opts.dtype !== "float32") {
    throw new Error(`dtype "${opts.dtype}" is not implemented; models compute in float32`);
  }
  const prefix = backbonePrefix(cfg);
  const loraCfg = opts.lora === undefined ? (opts.adapter?.config ?? null) : opts.lora;
  if (loraCfg && loraCfg.bias !== "none") {
    throw new Error(
      `LoRA bias "${loraCfg.bias}" is not supported: toxlora trains LoRA factors and the head only (bias "none")`,
    );
  }
  const training = opts.training ?? false;
  const rng = createRng(opts.seed ?? 0);
  const lora = createLoraContext({
    config: loraCfg,
    adapter: opts.adapter?.lora,
    training,
    merged: opts.merged ?? false,
    mergeInPlace: opts.mergeInPlace,
    quantizeMerged: opts.quantizeMerged,
    baseKernel: opts.baseKernel,
    rng,
  });
  const weights = withPrefixAlias(ckpt.weights, prefix);
  const bb: BackboneContext = {
    g,
    weights,
    lora,
    dropout: training,
    recompute: opts.gradientCheckpointing === true ? "full" : (opts.gradientCheckpointing ?? false),
  };

  const inputs: BackboneInputs = {
    inputIds: g.input("input_ids", "int64", ["batch", "seq"]),
    attentionMask: g.input("attention_mask", "int64", ["batch", "seq"]),
    embedWords: opts.embedWords,
  };
  if (cfg.family === "bert") {
    // Without a token_type_ids input (exported models) every position has type 0, as in transformers.
    inputs.tokenTypeIds =
      opts.tokenTypeInput === false
        ? mul(inputs.inputIds, scalar(g, 0, "int64"))
        : g.input("token_type_ids", "int64", ["batch", "seq"]);
  }

  const lastHiddenState =
    cfg.family === "bert"
      ? bertModel(bb, cfg, prefix, inputs).lastHiddenState
      : cfg.family === "llama"
        ? llamaModel(bb, cfg, prefix, inputs).lastHiddenState
        : modernBertModel(bb, cfg, prefix, inputs).lastHiddenState;

  const initRange = cfg.raw.initializer_range;
  const hc: HeadContext = {
    g,
    lora,
    adapterSaved: opts.adapter?.saved,
    weights: firstOf(opts.headWeights, weights),
    initStd: typeof initRange === "number" ? initRange : 0.02,
    warnings: [],
    paramNames: [],
  };
  const pooledOut = poolOutputs(bb, hc, cfg, prefix, lastHiddenState, inputs, opts.padTokenId ?? null);
  const head = classifierHead(hc, pooledOut, opts.head);

  if (opts.adapter) {
    // A saved parameter outside any classification head (e.g. biases of bias="all" adapters)
    // would change the backbone, which toxlora does not do: refuse rather than ignore it. Saved
    // head tensors of another head kind are fine (a run may switch heads).
    const foreign = [...opts.adapter.saved.keys()].filter(
      (n) => !hc.paramNames.includes(n) && !/^(classifier|score|head|heads)\./.test(n),
    );
    if (foreign.length > 0) {
      throw new Error(
        `the adapter saves "${savedParamKey(foreign[0])}"${foreign.length > 1 ? ` and ${foreign.length - 1} more` : ""}, which is not part of a classification head; toxlora adapters change the backbone through LoRA only (bias "none")`,
      );
    }
    const unused = [...opts.adapter.lora.keys()].filter((m) => !lora.usedAdapterModules.has(m));
    if (unused.length > 0) {
      throw new Error(
        `the adapter has LoRA weights for modules this model does not adapt: ${unused
          .slice(0, 3)
          .map((m) => `"${loraKey(m, "A")}"`)
          .join(
            ", ",
          )}${unused.length > 3 ? ` and ${unused.length - 3} more` : ""} (wrong base model or target_modules?)`,
      );
    }
  }

  let labelsInput: Tensor | undefined;
  const headModules = [...new Set(hc.paramNames.map((n) => n.slice(0, n.lastIndexOf("."))))];
  return {
    config: cfg,
    prefix,
    inputs,
    lastHiddenState,
    pooled: pooledOut.pooled,
    logits: head.logits,
    probs: head.probs,
    head: opts.head,
    params: lora.params,
    initial: lora.initial,
    loraModules: lora.loraModules,
    modulesToSave: head.modulesToSave,
    warnings: hc.warnings,
    loss(labels?: Tensor): Tensor {
      if (!labels) {
        labelsInput ??= g.input("labels", "float32", ["batch", opts.head.numLabels]);
        labels = labelsInput;
      }
      return head.loss(labels);
    },
    adapterConfig(): Partial<LoraAdapterConfig> {
      if (!loraCfg) throw new Error("this classifier has no LoRA config to save");
      return {
        ...loraCfg,
        task_type: "SEQ_CLS",
        target_modules: resolveTargets(loraCfg, lora.loraModules, [...lora.linearModules, ...headModules]),
        modules_to_save: head.modulesToSave,
        inference_mode: true,
      };
    },
  };
}

/**
 * target_modules to write in adapter_config.json. A list or regex is kept as given; "all-linear"
 * becomes the last names of the adapted modules (as PEFT itself saves it) when those names select
 * exactly the adapted modules under PEFT's suffix rule, else the full module paths.
 */
function resolveTargets(
  config: LoraAdapterConfig,
  adapted: string[],
  allLinear: string[],
): string[] | string | null {
  if (!isAllLinear(config.target_modules)) return config.target_modules;
  const last = (p: string) => p.slice(p.lastIndexOf(".") + 1);
  const names = [...new Set(adapted.map(last))].sort();
  const chosen = new Set(adapted);
  const exact = allLinear.every((m) => chosen.has(m) || !names.includes(last(m)));
  return exact ? names : [...adapted];
}

/**
 * The head stored under transformers names in `src` (an adapter's saved modules, a checkpoint or a
 * head.safetensors): per-label-softmax when `heads.0.weight` exists, multilabel when a classifier
 * weight does; undefined when there is no head.
 */
export function detectHead(src: WeightSource): { kind: HeadKind; numLabels: number } | undefined {
  let n = 0;
  while (src.get(`heads.${n}.weight`)) n++;
  if (n > 0) return { kind: "per-label-softmax", numLabels: n };
  for (const name of ["classifier.weight", "score.weight", "classifier.out_proj.weight"]) {
    const t = src.get(name);
    if (t && t.shape.length === 2) return { kind: "multilabel", numLabels: t.shape[0] };
  }
  return undefined;
}
