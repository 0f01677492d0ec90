// Classification heads on top of a backbone: pooling per architecture, then one of two heads.
//
// Pooling (as each transformers *ForSequenceClassification does it):
//   bert        pooled = tanh(bert.pooler.dense(h[:, 0]))              (the pooler is backbone)
//   roberta     pooled = tanh(classifier.dense(h[:, 0]))               (RobertaClassificationHead)
//   modernbert  pooled = head.norm(act(head.dense(cls or masked mean)))
//   llama       pooled = h at the rightmost position whose id is not the pad id (left or right padding)
//
// Heads:
//   multilabel         one logit per label (classifier / score / classifier.out_proj), BCE-with-logits
//   per-label-softmax  the prototype's: one Linear(hidden, 2) per label `heads.{j}`, cross-entropy
//                      over batch × labels
//
// Head weights are trainable (PEFT modules_to_save) and named by their adapter key
// `base_model.model.<name>`; their values come from a loaded adapter, else from the checkpoint
// (or a head.safetensors beside it), else a fresh initialisation.

import type { Rng } from "../data/random.js";
import {
  add,
  arange,
  bceWithLogits,
  cast,
  concat,
  constant,
  div,
  dropout,
  equal,
  type Graph,
  layerNorm,
  matmul,
  mul,
  not,
  reduceMax,
  reduceSum,
  reshape,
  scalar,
  sigmoid,
  slice,
  sub,
  type Tensor,
  tanh,
  unsqueeze,
} from "../engine/index.js";
import type { BertConfig, HfModelConfig, LlamaConfig, ModernBertConfig } from "../io/hf-config.js";
import { savedParamKey } from "../io/peft.js";
import type { F32Tensor } from "../io/safetensors.js";
import { bertPooler, firstToken } from "./bert.js";
import { activation, type BackboneContext, type BackboneInputs } from "./common.js";
import { type LoraContext, trainable, uniform } from "./lora.js";
import type { WeightSource } from "./weights.js";

export type HeadKind = "multilabel" | "per-label-softmax";

export interface HeadSpec {
  kind: HeadKind;
  numLabels: number;
  /**
   * Weight of the positive term of each label's loss (BCEWithLogits pos_weight): > 1 counts
   * missed positives more. Also applies to per-label-softmax (class 1 of each label).
   */
  posWeight?: number[];
}

/** Where head values come from and where the head's parameters go. */
export interface HeadContext {
  g: Graph;
  lora: LoraContext;
  /** Head parameters saved in a loaded adapter, by parameter name ("classifier.weight"). */
  adapterSaved?: ReadonlyMap<string, F32Tensor>;
  /** Checkpoint (and head.safetensors) tensors under transformers names. */
  weights: WeightSource;
  /** std of the normal init of fresh linear heads (config.initializer_range). */
  initStd: number;
  /** Notes for the user (e.g. "classifier.weight not in the checkpoint: initialised randomly"). */
  warnings: string[];
  /** Names of the head's parameters (transformers names, e.g. "classifier.weight"). */
  paramNames: string[];
}

function normal(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    // Box–Muller: two independent N(0, 1) samples from two uniforms.
    const u = 1 - rng.next();
    const v = rng.next();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v) * std;
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v) * std;
  }
  return out;
}

type Init = () => Float32Array;

/** The starting value of head parameter `name`: adapter, else checkpoint, else `fresh()`. */
function headValue(hc: HeadContext, name: string, shape: number[], fresh: Init): Float32Array {
  const same = (t: F32Tensor) => t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
  const fromAdapter = hc.adapterSaved?.get(name);
  if (fromAdapter) {
    if (!same(fromAdapter)) {
      throw new Error(
        `adapter tensor "${savedParamKey(name)}" has shape [${fromAdapter.shape}], the head needs [${shape}]`,
      );
    }
    return fromAdapter.data;
  }
  const fromCkpt = hc.weights.get(name);
  if (fromCkpt && same(fromCkpt)) return fromCkpt.data;
  hc.warnings.push(
    fromCkpt
      ? `${name}: the checkpoint's tensor has shape [${fromCkpt.shape}], not [${shape}]; initialised afresh`
      : `${name}: not in the checkpoint; initialised afresh`,
  );
  return fresh();
}

/** A head parameter: trainable (named by its adapter key), or frozen when the model is merged. */
function headParam(hc: HeadContext, name: string, shape: number[], fresh: Init): Tensor {
  const value = headValue(hc, name, shape, fresh);
  hc.paramNames.push(name);
  if (hc.lora.merged) return hc.g.initializer(name, "float32", shape, value);
  return trainable(hc.g, hc.lora, savedParamKey(name), shape, value);
}

/**
 * A trainable Linear `name` on x [..., inF]: y = x Wᵀ (+ b). Fresh values follow transformers'
 * _init_weights: W ~ N(0, initializer_range), b = 0.
 */
export function headLinear(
  hc: HeadContext,
  name: string,
  x: Tensor,
  inF: number,
  outF: number,
  opts: { bias: boolean },
): Tensor {
  const w = headParam(hc, `${name}.weight`, [outF, inF], () => normal(hc.lora.rng, outF * inF, hc.initStd));
  const y = matmul(x, w, { transB: true });
  return opts.bias
    ? add(
        y,
        headParam(hc, `${name}.bias`, [outF], () => new Float32Array(outF)),
      )
    : y;
}

function headLayerNorm(hc: HeadContext, name: string, x: Tensor, size: number, eps: number, bias: boolean) {
  const w = headParam(hc, `${name}.weight`, [size], () => new Float32Array(size).fill(1));
  const b = bias ? headParam(hc, `${name}.bias`, [size], () => new Float32Array(size)) : null;
  return layerNorm(x, w, b, eps);
}

// ---- pooling ------------------------------------------------------------------------------------

/** Masked mean over the sequence: sum(h · mask) / sum(mask), [batch, hidden]. */
export function meanPool(h: Tensor, attentionMask: Tensor): Tensor {
  const m = cast(attentionMask, "float32");
  return div(reduceSum(mul(h, unsqueeze(m, [2])), [1]), reduceSum(m, [1], true));
}

/**
 * Hidden state at the rightmost position whose id is not `padTokenId` (transformers'
 * LlamaForSequenceClassification; right for left and right padding). Without a pad id, the
 * rightmost position with attention_mask 1. Built as a one-hot [batch, 1, seq] times h, so the
 * gradient flows back to h.
 */
export function lastTokenPool(
  h: Tensor,
  inputIds: Tensor,
  attentionMask: Tensor,
  padTokenId: number | null,
): Tensor {
  const g = h.graph;
  const isToken =
    padTokenId === null
      ? equal(attentionMask, scalar(g, 1, "int64"))
      : not(equal(inputIds, scalar(g, padTokenId, "int64")));
  const pos = arange(g, "seq");
  const last = reduceMax(mul(cast(isToken, "int64"), pos), [1], true); // [batch, 1]
  const oneHot = cast(equal(unsqueeze(pos, [0]), last), "float32"); // [batch, seq]
  return reshape(matmul(unsqueeze(oneHot, [1]), h), [h.shape[0], h.shape[2]]);
}

// ---- per architecture ---------------------------------------------------------------------------

export interface PooledOutputs {
  /** What the head's classifier reads: [batch, hidden]. */
  pooled: Tensor;
  /** The classifier layer name for a multilabel head ("classifier", "score", "classifier.out_proj"). */
  classifierName: string;
  classifierBias: boolean;
  /** Dropout before the classifier (training only). */
  classifierDropout: number;
  /** modules_to_save of a PEFT adapter with this head (besides the classifier). */
  modulesToSave: string[];
}

export function poolOutputs(
  bb: BackboneContext,
  hc: HeadContext,
  cfg: HfModelConfig,
  prefix: string,
  h: Tensor,
  inputs: BackboneInputs,
  padTokenId: number | null,
): PooledOutputs {
  switch (cfg.family) {
    case "bert":
      return poolBert(bb, hc, cfg, prefix, h);
    case "modernbert":
      return poolModernBert(bb, hc, cfg, h, inputs);
    case "llama":
      return poolLlama(cfg, h, inputs, padTokenId);
  }
}

function poolBert(bb: BackboneContext, hc: HeadContext, cfg: BertConfig, prefix: string, h: Tensor) {
  const drop = bb.dropout ? (cfg.classifier_dropout ?? cfg.hidden_dropout_prob) : 0;
  const H = cfg.hidden_size;
  if (!cfg.roberta_positions) {
    return {
      pooled: bertPooler(bb, cfg, prefix, h),
      classifierName: "classifier",
      classifierBias: true,
      classifierDropout: drop,
      modulesToSave: [],
    };
  }
  // RobertaClassificationHead: dropout → dense → tanh → dropout → out_proj, all trainable.
  const x = dropout(firstToken(h), drop);
  return {
    pooled: tanh(headLinear(hc, "classifier.dense", x, H, H, { bias: true })),
    classifierName: "classifier.out_proj",
    classifierBias: true,
    classifierDropout: drop,
    modulesToSave: ["classifier"],
  };
}

function poolModernBert(
  bb: BackboneContext,
  hc: HeadContext,
  cfg: ModernBertConfig,
  h: Tensor,
  inputs: BackboneInputs,
) {
  const H = cfg.hidden_size;
  const x = cfg.classifier_pooling === "cls" ? firstToken(h) : meanPool(h, inputs.attentionMask);
  const dense = headLinear(hc, "head.dense", x, H, H, { bias: cfg.classifier_bias });
  const act = activation(dense, cfg.classifier_activation, cfg.source);
  return {
    pooled: headLayerNorm(hc, "head.norm", act, H, cfg.norm_eps, cfg.norm_bias),
    classifierName: "classifier",
    classifierBias: true,
    classifierDropout: bb.dropout ? cfg.classifier_dropout : 0,
    modulesToSave: ["head"],
  };
}

function poolLlama(cfg: LlamaConfig, h: Tensor, inputs: BackboneInputs, padTokenId: number | null) {
  return {
    pooled: lastTokenPool(h, inputs.inputIds, inputs.attentionMask, padTokenId ?? cfg.pad_token_id),
    classifierName: "score",
    classifierBias: false,
    classifierDropout: 0,
    modulesToSave: [],
  };
}

// ---- heads and losses ---------------------------------------------------------------------------

export interface HeadOutputs {
  /** multilabel: [batch, labels]; per-label-softmax: [batch, labels, 2]. */
  logits: Tensor;
  /** P(label j) for each label: sigmoid, or softmax's class-1 probability. [batch, labels] */
  probs: Tensor;
  /** Mean loss against float 0/1 labels [batch, labels]. */
  loss(labels: Tensor): Tensor;
  /** modules_to_save names of this head (e.g. ["classifier"], ["heads"]). */
  modulesToSave: string[];
}

export function classifierHead(hc: HeadContext, pooledOut: PooledOutputs, spec: HeadSpec): HeadOutputs {
  const { g } = hc;
  const { pooled } = pooledOut;
  const H = pooled.shape[1] as number;
  const L = spec.numLabels;
  if (spec.posWeight && spec.posWeight.length !== L) {
    throw new Error(`posWeight has ${spec.posWeight.length} values but there are ${L} labels`);
  }
  const posWeight = spec.posWeight ? constant(g, spec.posWeight, [L]) : undefined;
  const x = dropout(pooled, pooledOut.classifierDropout);
  const saved = [...pooledOut.modulesToSave];

  if (spec.kind === "multilabel") {
    const name = pooledOut.classifierName;
    const logits = headLinear(hc, name, x, H, L, { bias: pooledOut.classifierBias });
    if (!saved.includes(name.split(".")[0])) saved.push(name.split(".")[0]);
    return {
      logits,
      probs: sigmoid(logits),
      loss: (labels) => bceWithLogits(logits, labels, posWeight),
      modulesToSave: saved,
    };
  }

  // per-label-softmax: heads.j.weight [2, H] stacked to [2L, H], so one matmul gives [B, 2L].
  const ws: Tensor[] = [];
  const bs: Tensor[] = [];
  // Fresh heads start as nn.Linear(hidden, 2) does: U(±1/sqrt(hidden)) for weight and bias.
  const rng = hc.lora.rng;
  const bound = 1 / Math.sqrt(H);
  for (let j = 0; j < L; j++) {
    ws.push(headParam(hc, `heads.${j}.weight`, [2, H], () => uniform(rng, 2 * H, bound)));
    bs.push(headParam(hc, `heads.${j}.bias`, [2], () => uniform(rng, 2, bound)));
  }
  const flat = add(matmul(x, concat(ws, 0), { transB: true }), concat(bs, 0));
  const logits = reshape(flat, [pooled.shape[0], L, 2]);
  // Two-class cross-entropy equals BCE-with-logits on z1 - z0 (log(1 + e^{z0 - z1}) for class 1),
  // which is numerically stable and takes pos_weight the same way as the multilabel head.
  const margin = reshape(sub(slice(logits, [1], [2], [2]), slice(logits, [0], [1], [2])), [
    pooled.shape[0],
    L,
  ]);
  saved.push("heads");
  return {
    logits,
    probs: sigmoid(margin),
    loss: (labels) => bceWithLogits(margin, labels, posWeight),
    modulesToSave: saved,
  };
}
