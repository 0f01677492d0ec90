// Linear layers with PEFT LoRA. Every linear layer of a backbone goes through `linear()`:
//
//   y = x Wᵀ + b + s · B(A(dropout(x)))      s = alpha / r   (alpha / sqrt(r) with rsLoRA)
//
// W and b are frozen graph initializers named by their checkpoint key; A [r, in] and B [out, r]
// are trainable graph parameters named by their PEFT adapter key
// (`base_model.model.<module>.lora_A.weight`), so a trained parameter map is directly an adapter
// file. A starts Kaiming-uniform(a=√5) as PEFT/nn.Linear initialises it, B starts at zero, or
// both come from a loaded adapter. With `merged`, W + s·B·A is folded into the frozen weight and
// no LoRA branch is built (prediction).
//
// Which modules get LoRA follows PEFT exactly (src/io/peft.ts): suffix matching of
// `target_modules` (so "dense" also matches BERT's pooler.dense), a regex string as full match,
// `exclude_modules`, and "all-linear" = every linear layer of the backbone (never the head, which
// is trained in full as a modules_to_save module).

import type { Rng } from "../data/random.js";
import { add, dropout, type Graph, matmul, qgemmMatmul, quantMatmul, type Tensor } from "../engine/index.js";
import {
  isAllLinear,
  isLoraTarget,
  type LoraAdapterConfig,
  loraKey,
  loraRank,
  loraScaling,
} from "../io/peft.js";
import type { F32Tensor } from "../io/safetensors.js";
import { type QGemmWeight, qgemmFromFloat, qgemmFromInt4, qgemmFromInt8Blocks } from "../quant/qgemm.js";
import { type QuantizedTensor, type QuantizeOptions, quantizeWeight } from "../quant/weights.js";
import { type Presence, requireWeight, type WeightSource, weightFor } from "./weights.js";

/**
 * How frozen weights are fed to MatMul. "transB" keeps the checkpoint's [out, in] layout and
 * multiplies with transB (onnxruntime's com.microsoft FusedMatMul); the backward dX = dY·W is then
 * a plain MatMul. Storing Wᵀ [in, out] instead swaps the two. bench/models.ts measures both on
 * llm-jp-3-1.8b's MLP shape (forward and forward+backward, pre-packing on and off): they are equal
 * within noise, so the checkpoint layout is kept and loading needs no transposed copy.
 */
const TRANS_B = true;

/** Everything linear layers of one graph share: LoRA settings, adapter values, and the outputs. */
export interface LoraContext {
  /** PEFT LoRA settings, or null for a plain (un-adapted) model. */
  config: LoraAdapterConfig | null;
  /** Values to start from (a loaded adapter): LoRA factors by module path. */
  adapter?: ReadonlyMap<string, { A: F32Tensor; B: F32Tensor }>;
  /** Training mode: LoRA dropout (and model dropouts) are active. */
  training: boolean;
  /** Fold LoRA into the frozen weights; no trainable LoRA parameters are created. */
  merged: boolean;
  /** Fold into the checkpoint's arrays in place instead of copies (the caller owns the weights). */
  mergeInPlace?: boolean;
  /** Quantize each float32 backbone weight after merging (export --quantize). */
  quantizeMerged?: QuantizeOptions;
  /**
   * With `merged` (prediction graphs only): the kernel of a quantized base's int8/int4 weights.
   * "matmulnbits" (default) computes with float32 activations, equal to the float32 model on
   * the dequantized weights; "qgemm" requantizes them per channel for the int8 GEMM (faster,
   * activations quantized to 8 bits).
   */
  baseKernel?: "matmulnbits" | "qgemm";
  /** Random source for fresh LoRA A matrices. */
  rng: Rng;
  /** Trainable parameters created so far (LoRA factors, then the head). */
  params: Tensor[];
  /** Initial value of each trainable parameter, by name. */
  initial: Map<string, Float32Array>;
  /** Module paths that got a LoRA branch (or a merged delta), in creation order. */
  loraModules: string[];
  /** Every backbone linear layer seen, adapted or not (to resolve "all-linear" when saving). */
  linearModules: string[];
  /** Adapter modules consumed, to report adapter tensors that match no module. */
  usedAdapterModules: Set<string>;
}

export function createLoraContext(
  opts: Pick<
    LoraContext,
    "config" | "adapter" | "training" | "merged" | "rng" | "mergeInPlace" | "quantizeMerged" | "baseKernel"
  >,
): LoraContext {
  return {
    ...opts,
    params: [],
    initial: new Map(),
    loraModules: [],
    linearModules: [],
    usedAdapterModules: new Set(),
  };
}

/** Whether PEFT would put LoRA on this backbone module under `config`. */
export function wantsLora(config: LoraAdapterConfig | null, modulePath: string): boolean {
  if (!config) return false;
  if (isAllLinear(config.target_modules)) {
    // Every backbone linear, minus exclude_modules / modules_to_save / layers_to_transform.
    return isLoraTarget(modulePath, { ...config, target_modules: [modulePath] });
  }
  return isLoraTarget(modulePath, config);
}

/** n values from U(-bound, bound). */
export function uniform(rng: Rng, n: number, bound: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.next() * 2 - 1) * bound;
  return out;
}

/**
 * kaiming_uniform_(a=sqrt(5)) of a [rows, fanIn] matrix, nn.Linear's and PEFT's init of lora_A:
 * gain sqrt(2 / (1 + 5)) times sqrt(3 / fanIn) = a bound of 1 / sqrt(fanIn).
 */
export function kaimingUniform(rng: Rng, rows: number, fanIn: number): Float32Array {
  return uniform(rng, rows * fanIn, 1 / Math.sqrt(fanIn));
}

/** Registers a trainable parameter with its initial value. */
export function trainable(g: Graph, ctx: LoraContext, name: string, shape: number[], init: Float32Array) {
  const p = g.param(name, shape);
  ctx.params.push(p);
  ctx.initial.set(name, init);
  return p;
}

/** W + s·B·A for W [out, in], B [out, r], A [r, in] (accumulated in float64). */
export function mergeDelta(
  w: Float32Array,
  a: Float32Array,
  b: Float32Array,
  out: number,
  inF: number,
  r: number,
  s: number,
  inPlace = false,
): Float32Array {
  const res = inPlace ? w : new Float32Array(w);
  const row = new Float64Array(inF);
  for (let o = 0; o < out; o++) {
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const bk = b[o * r + k];
      if (bk === 0) continue;
      const aOff = k * inF;
      for (let i = 0; i < inF; i++) row[i] += bk * a[aOff + i];
    }
    const off = o * inF;
    for (let i = 0; i < inF; i++) res[off + i] = w[off + i] + s * row[i];
  }
  return res;
}

export interface LinearOptions {
  inFeatures: number;
  outFeatures: number;
  /** "optional": use `<path>.bias` when the checkpoint has it. Default "optional". */
  bias?: Presence;
}

/**
 * A backbone linear layer `<modulePath>` (weight `<modulePath>.weight` [out, in]) applied to x
 * [..., in], with a LoRA branch when the LoRA config targets the module.
 */
export function linear(
  g: Graph,
  modulePath: string,
  x: Tensor,
  weights: WeightSource,
  ctx: LoraContext,
  opts: LinearOptions,
): Tensor {
  const { inFeatures: inF, outFeatures: out } = opts;
  ctx.linearModules.push(modulePath);
  const key = `${modulePath}.weight`;
  let q = weights.getQuantized?.(key);
  // A quantized base keeps its LoRA branch even when merged (merging would need a requantization).
  const quantizedBase = q !== undefined;
  if (q && (q.attrs.n !== out || q.attrs.k !== inF)) {
    throw new Error(
      `${weights.origin}: tensor "${key}" has shape [${q.attrs.n}, ${q.attrs.k}] but the config implies [${out}, ${inF}]`,
    );
  }
  let w = q ? undefined : requireWeight(weights, key, [out, inF]);
  const b = weightFor(weights, `${modulePath}.bias`, [out], opts.bias ?? "optional");

  const lora = wantsLora(ctx.config, modulePath) ? ctx.config : null;
  let A: Float32Array | undefined;
  let B: Float32Array | undefined;
  let r = 0;
  let s = 0;
  if (lora) {
    r = loraRank(lora, modulePath);
    s = loraScaling(lora, modulePath);
    const given = ctx.adapter?.get(modulePath);
    if (ctx.adapter && !given) {
      throw new Error(
        `the adapter has no LoRA weights for "${modulePath}", which its target_modules select (missing "${loraKey(modulePath, "A")}")`,
      );
    }
    if (given) {
      ctx.usedAdapterModules.add(modulePath);
      const okA = given.A.shape[0] === r && given.A.shape[1] === inF;
      const okB = given.B.shape[0] === out && given.B.shape[1] === r;
      if (!okA || !okB) {
        throw new Error(
          `adapter LoRA for "${modulePath}": lora_A [${given.A.shape}] / lora_B [${given.B.shape}] do not fit the layer ([${r}, ${inF}] / [${out}, ${r}])`,
        );
      }
      A = given.A.data;
      B = given.B.data;
    } else {
      A = kaimingUniform(ctx.rng, r, inF);
      B = new Float32Array(out * r);
    }
    ctx.loraModules.push(modulePath);
    if (ctx.merged && w) {
      w = mergeDelta(w, A, B, out, inF, r, s, ctx.mergeInPlace);
    }
  }
  let qg: QGemmWeight | undefined;
  if (q && ctx.merged && ctx.baseKernel === "qgemm" && q.attrs.scheme !== "nf4") {
    qg = q.attrs.scheme === "int4" ? qgemmFromInt4(q) : qgemmFromInt8Blocks(q);
  }
  if (w && ctx.quantizeMerged && ctx.quantizeMerged.scheme !== "none") {
    if (ctx.quantizeMerged.kernel === "qgemm") qg = qgemmWeight(key, w, out, inF, ctx.quantizeMerged);
    else q = quantizeWeight(key, w, out, inF, ctx.quantizeMerged);
  }

  let y = qg
    ? qgemmLinear(g, key, x, qg)
    : q
      ? quantizedLinear(g, key, x, q)
      : matmul(x, g.initializer(key, "float32", [out, inF], w as Float32Array), { transB: TRANS_B });
  if (b) y = add(y, g.initializer(`${modulePath}.bias`, "float32", [out], b));
  if (lora && A && B && !(ctx.merged && !quantizedBase)) {
    // Trainable factors, or frozen ones beside a quantized base in a prediction graph.
    const [pa, pb] = ctx.merged
      ? [
          g.initializer(loraKey(modulePath, "A"), "float32", [r, inF], A),
          g.initializer(loraKey(modulePath, "B"), "float32", [out, r], B),
        ]
      : [
          trainable(g, ctx, loraKey(modulePath, "A"), [r, inF], A),
          trainable(g, ctx, loraKey(modulePath, "B"), [out, r], B),
        ];
    const p = ctx.training ? lora.lora_dropout : 0;
    const h = matmul(dropout(x, p), pa, { transB: true });
    y = add(y, matmul(h, pb, { transB: true, alpha: s }));
  }
  return y;
}

/** A merged weight for QGemm: per-channel int8, or int4 (MatMulNBits layout) requantized at load. */
function qgemmWeight(key: string, w: Float32Array, n: number, k: number, opts: QuantizeOptions): QGemmWeight {
  if (opts.scheme === "int8") return qgemmFromFloat(w, n, k);
  if (opts.scheme === "int4") return qgemmFromInt4(quantizeWeight(key, w, n, k, opts));
  throw new Error(`tensor "${key}": the qgemm kernel takes int8 or int4, not ${opts.scheme}`);
}

/** x · Wᵀ on the int8 QGEMM: initializers `<key>.codes/.scales` (+ `.block_scales` for int4). */
function qgemmLinear(g: Graph, key: string, x: Tensor, w: QGemmWeight): Tensor {
  const codes = g.initializer(`${key}.codes`, "uint8", w.codesShape, w.codes);
  const scales = g.initializer(`${key}.scales`, "float32", [w.attrs.n], w.scales);
  const blockScales = w.blockScales
    ? g.initializer(`${key}.block_scales`, "float32", [w.blockScales.length], w.blockScales)
    : undefined;
  return qgemmMatmul(x, codes, scales, w.attrs, blockScales);
}

/** x · Wᵀ with W stored quantized: codes and scales are the graph's initializers `<key>.codes/.scales`. */
function quantizedLinear(g: Graph, key: string, x: Tensor, q: QuantizedTensor): Tensor {
  const codes = g.initializer(`${key}.codes`, "uint8", q.codesShape, q.codes);
  const scales = g.initializer(`${key}.scales`, "float32", [q.scales.length], q.scales);
  return quantMatmul(x, codes, scales, q.attrs);
}
