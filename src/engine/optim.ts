// Optimizers built into the training graph: gradient clipping by global norm, AdamW with PyTorch
// semantics and plain SGD. The learning rate and the step number are scalar graph inputs, so
// learning-rate schedules stay ordinary TypeScript functions (src/train/schedules.ts).

import type { Graph, Tensor } from "./graph.js";
import {
  add,
  cast,
  div,
  less,
  mul,
  powTensor,
  reciprocal,
  rsub,
  scalar,
  scale,
  sqrt,
  sub,
  sumAll,
  where,
} from "./ops.js";

/** One optimizer state tensor: fed as `input`, its next value returned as graph output `output`. */
export interface StateSlot {
  input: string;
  output: string;
  shape: number[];
}

export interface OptimizerGraph {
  /** Scalar float32 inputs. */
  lrInput: string;
  stepInput: string;
  /** Per parameter: its name, the output holding its updated value, and its state slots. */
  updates: { param: string; output: string; state: StateSlot[] }[];
  /** Output with the global gradient norm before clipping. */
  gradNormOutput: string;
}

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Clip the global gradient norm to this value (PyTorch clip_grad_norm_); 0 or undefined = off. */
  maxGradNorm?: number;
  /** Which parameters get weight decay (default: all). */
  decay?: (paramName: string) => boolean;
}

/** sqrt(sum of squares of all gradients), as PyTorch's clip_grad_norm_ computes it. */
export function globalNorm(grads: Tensor[]): Tensor {
  return sqrt(grads.map((gr) => sumAll(mul(gr, gr))).reduce((a, b) => add(a, b)));
}

/** Scales gradients so that their global norm is at most `maxNorm` (coef = min(1, max/(norm+1e-6))). */
export function clipByGlobalNorm(grads: Tensor[], norm: Tensor, maxNorm: number): Tensor[] {
  const g = norm.graph;
  const coef = div(scalar(g, maxNorm), add(norm, scalar(g, 1e-6)));
  const clamped = where(less(coef, scalar(g, 1)), coef, scalar(g, 1));
  return grads.map((gr) => mul(gr, clamped));
}

/**
 * What every optimizer starts with: the scalar inputs "lr" and "step", the parameters that have a
 * gradient, and those gradients clipped to `maxGradNorm` (0 = no clipping); the global norm before
 * clipping becomes the output "grad_norm".
 */
function optimizerInputs(graph: Graph, grads: Map<Tensor, Tensor | null>, maxGradNorm: number) {
  const lr = graph.input("lr", "float32", []);
  const t = graph.input("step", "float32", []);
  const entries = [...grads].filter((e): e is [Tensor, Tensor] => e[1] !== null);
  const raw = entries.map(([, gr]) => gr);
  const norm = globalNorm(raw);
  graph.output("grad_norm", norm);
  return {
    lr,
    t,
    params: entries.map(([p]) => p),
    grads: maxGradNorm > 0 ? clipByGlobalNorm(raw, norm, maxGradNorm) : raw,
  };
}

/**
 * AdamW (decoupled weight decay, bias-corrected moments) exactly as torch.optim.AdamW:
 *   p <- p - lr*wd*p;  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2
 *   p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 */
export function adamw(
  graph: Graph,
  grads: Map<Tensor, Tensor | null>,
  opts: AdamWOptions = {},
): OptimizerGraph {
  const {
    beta1 = 0.9,
    beta2 = 0.999,
    eps = 1e-8,
    weightDecay = 0.01,
    maxGradNorm = 0,
    decay = () => true,
  } = opts;
  const { lr, t, params, grads: clipped } = optimizerInputs(graph, grads, maxGradNorm);

  // Bias corrections in float64 as PyTorch does: 1 - 0.999^t loses ~5 digits in float32.
  const t64 = cast(t, "float64");
  const bc1 = rsub(1, powTensor(scalar(graph, beta1, "float64"), t64));
  const bc2 = rsub(1, powTensor(scalar(graph, beta2, "float64"), t64));
  const stepSize = cast(div(cast(lr, "float64"), bc1), "float32");
  const invSqrtBc2 = cast(reciprocal(sqrt(bc2)), "float32");

  const updates: OptimizerGraph["updates"] = [];
  params.forEach((p, i) => {
    const gr = clipped[i];
    const shape = p.shape as number[];
    const m = graph.input(`${p.name}.exp_avg`, "float32", shape);
    const v = graph.input(`${p.name}.exp_avg_sq`, "float32", shape);
    const m2 = add(scale(m, beta1), scale(gr, 1 - beta1));
    const v2 = add(scale(v, beta2), scale(mul(gr, gr), 1 - beta2));
    const decayed = weightDecay > 0 && decay(p.name) ? sub(p, mul(p, scale(lr, weightDecay))) : p;
    const denom = add(mul(sqrt(v2), invSqrtBc2), scalar(graph, eps));
    const p2 = sub(decayed, mul(stepSize, div(m2, denom)));
    graph.output(`${p.name}.new`, p2);
    graph.output(`${p.name}.exp_avg.new`, m2);
    graph.output(`${p.name}.exp_avg_sq.new`, v2);
    updates.push({
      param: p.name,
      output: `${p.name}.new`,
      state: [
        { input: m.name, output: `${p.name}.exp_avg.new`, shape },
        { input: v.name, output: `${p.name}.exp_avg_sq.new`, shape },
      ],
    });
  });
  return { lrInput: lr.name, stepInput: t.name, updates, gradNormOutput: "grad_norm" };
}

export interface SGDOptions {
  weightDecay?: number;
  maxGradNorm?: number;
}

/** Plain SGD: p <- p - lr * (g + wd * p). */
export function sgd(graph: Graph, grads: Map<Tensor, Tensor | null>, opts: SGDOptions = {}): OptimizerGraph {
  const { weightDecay = 0, maxGradNorm = 0 } = opts;
  const { lr, t, params, grads: clipped } = optimizerInputs(graph, grads, maxGradNorm);
  const updates: OptimizerGraph["updates"] = [];
  params.forEach((p, i) => {
    const gr = weightDecay > 0 ? add(clipped[i], scale(p, weightDecay)) : clipped[i];
    graph.output(`${p.name}.new`, sub(p, mul(lr, gr)));
    updates.push({ param: p.name, output: `${p.name}.new`, state: [] });
  });
  return { lrInput: lr.name, stepInput: t.name, updates, gradNormOutput: "grad_norm" };
}
