// Reverse-mode automatic differentiation over the graph IR, using the VJP rules of src/engine/ops.ts.
// Only tensors that depend on a trainable parameter get gradients: frozen initializers and inputs
// get none (no dW matmul for a frozen weight), and nodes below the lowest parameter get no backward.

import { type Graph, isFloat, type Node, ShapeError, type Tensor } from "./graph.js";
import { add, OPS, scalarLike, zerosLike } from "./ops.js";

/**
 * Builds the backward graph of `loss` (a scalar) with respect to `params` and returns the gradient
 * of each parameter. A parameter that does not influence the loss maps to `null`.
 */
export function grad(loss: Tensor, params: Tensor[], seed?: Tensor): Map<Tensor, Tensor | null> {
  const g: Graph = loss.graph;
  if (!seed && loss.rank !== 0) {
    throw new ShapeError(`grad: loss must be a scalar, got ${loss.name}[${loss.shape.join(", ")}]`);
  }
  const forward = [...g.nodes];

  // Forward pass: which float tensors depend on a parameter. Ops without a gradient rule are
  // followed too, so that the backward pass can tell when such an op cuts a float path.
  const dependsOnParam = new Set<Tensor>(params);
  for (const n of forward) {
    if (n.inputs.some((t) => dependsOnParam.has(t))) {
      for (const o of n.outputs) if (isFloat(o.dtype)) dependsOnParam.add(o);
    }
  }

  // Backward pass in reverse creation order (creation order is topological).
  const grads = new Map<Tensor, Tensor>();
  grads.set(loss, seed ?? scalarLike(loss, 1));
  for (let k = forward.length - 1; k >= 0; k--) {
    const n: Node = forward[k];
    const outGrads = n.outputs.map((o) => grads.get(o) ?? null);
    if (outGrads.every((x) => x === null)) continue;
    const needs = n.inputs.map((t) => dependsOnParam.has(t));
    if (!needs.some(Boolean)) continue;
    const rule = OPS[n.op].vjp;
    if (!rule) {
      const from = n.inputs.filter((_, i) => needs[i]).map((t) => t.name);
      throw new Error(
        `grad: op ${n.op} (output ${n.outputs[0].name}) has no gradient rule, but the loss depends on it through ${from.join(", ")}, which depends on a parameter`,
      );
    }
    const inGrads = rule(
      outGrads.map((og, i) => og ?? zerosLike(n.outputs[i])),
      n,
      needs,
    );
    n.inputs.forEach((t, i) => {
      const gi = inGrads[i];
      if (!needs[i] || !gi) return;
      const prev = grads.get(t);
      grads.set(t, prev ? add(prev, gi) : gi);
    });
  }
  return new Map(params.map((p) => [p, grads.get(p) ?? null]));
}
