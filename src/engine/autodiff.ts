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

  // Forward pass: which tensors depend on a parameter.
  const dependsOnParam = new Set<Tensor>(params);
  for (const n of forward) {
    if (OPS[n.op].vjp === undefined) continue;
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
    if (!rule)
      throw new Error(`grad: op ${n.op} has no gradient rule but lies between a parameter and the loss`);
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
