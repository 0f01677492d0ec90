// Reverse-mode automatic differentiation over the graph IR, using the VJP rules of src/engine/ops.ts.
// Only tensors that depend on a trainable parameter get gradients: frozen initializers and inputs
// get none (no dW matmul for a frozen weight), and nodes below the lowest parameter get no backward.
//
// Gradient checkpointing: the nodes of a recomputed region (Graph.recompute, e.g. a transformer
// layer) are built a second time when the backward pass reaches the region, reading the region's
// inputs through After(·, incoming gradient); the region's VJPs then use the recomputed values, so
// onnxruntime can free the forward ones as soon as the forward pass is done with them. A region
// may keep some nodes' forward values (RecomputeRegion.keep: selective checkpointing).

import { type Graph, isFloat, type Node, type RecomputeRegion, ShapeError, type Tensor } from "./graph.js";
import { add, afterTensor, OPS, scalarLike, zerosLike } from "./ops.js";

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
  const recompute = new Recompute(forward, g.recomputed);

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
    // Zeros for outputs without a gradient take their shape from the node the rule reads, so a
    // recomputed region does not keep a forward value alive just for its shape.
    const seen = recompute.node(k, outGrads.find((x) => x !== null) as Tensor);
    const inGrads = rule(
      outGrads.map((og, i) => og ?? zerosLike(seen.outputs[i])),
      seen,
      needs,
    );
    n.inputs.forEach((t, i) => {
      const gi = inGrads[i];
      if (!needs[i] || !gi) return;
      const prev = grads.get(t);
      grads.set(t, prev ? add(prev, gi) : gi);
    });
    recompute.finishRegion(k, grads, params);
  }
  return new Map(params.map((p) => [p, grads.get(p) ?? null]));
}

/** The node a VJP reads: the forward node itself, or its copy in a recomputed region. */
class Recompute {
  private readonly regionAt: (RecomputeRegion | undefined)[];
  private readonly copies = new Map<RecomputeRegion, Node[]>();

  constructor(
    private readonly forward: Node[],
    regions: RecomputeRegion[],
  ) {
    this.regionAt = new Array(forward.length);
    for (const r of regions) for (let k = r.start; k < r.end; k++) this.regionAt[k] = r;
  }

  /** Node k as its VJP should see it; `after` is a gradient that must exist before a recomputation. */
  node(k: number, after: Tensor): Node {
    const r = this.regionAt[k];
    if (!r) return this.forward[k];
    let copy = this.copies.get(r);
    if (!copy) {
      copy = this.rebuild(r, after);
      this.copies.set(r, copy);
    }
    return copy[k - r.start];
  }

  /**
   * Called after node k's VJP. When k starts a recomputed region, the gradients leaving the region
   * (towards the values it read from before it) are made to wait for the gradients of the
   * parameters it uses. Without that edge onnxruntime may compute a layer's parameter gradients
   * only at the end of the backward pass, keeping every layer's recomputed values alive until
   * then (measured: ~150 MB per llm-jp-3-1.8b layer at 512 tokens, the whole saving gone).
   */
  finishRegion(k: number, grads: Map<Tensor, Tensor>, params: Tensor[]): void {
    const r = this.regionAt[k];
    if (!r || r.start !== k || !this.copies.has(r)) return;
    const region = this.forward.slice(r.start, r.end);
    const inside = new Set(region);
    const used = new Set(region.flatMap((n) => n.inputs));
    const paramGrads = params.filter((p) => used.has(p)).flatMap((p) => grads.get(p) ?? []);
    if (paramGrads.length === 0) return;
    for (const t of used) {
      const gt = grads.get(t);
      if (gt && t.producer && !inside.has(t.producer)) grads.set(t, afterTensor(gt, ...paramGrads));
    }
  }

  /**
   * The region's nodes built again: values made inside the region are the copies', values made
   * before it are read through After(·, after); leaves (weights, parameters, inputs) as they are.
   */
  private rebuild(r: RecomputeRegion, after: Tensor): Node[] {
    const g = after.graph;
    const inside = new Set(this.forward.slice(r.start, r.end));
    const map = new Map<Tensor, Tensor>();
    const from = (t: Tensor): Tensor => {
      let m = map.get(t);
      if (!m) {
        m = t.producer && !inside.has(t.producer) ? afterTensor(t, after) : t;
        map.set(t, m);
      }
      return m;
    };
    return this.forward.slice(r.start, r.end).map((n) => {
      // A kept node is its own copy: its VJP reads its forward outputs, and so do the recomputed
      // nodes, through After (else onnxruntime would merge a recomputed Cast of a kept mask with
      // the forward one and keep its float32 result instead).
      if (r.keep?.(n)) {
        for (const o of n.outputs) map.set(o, afterTensor(o, after));
        return n;
      }
      const copy = g.addNode(
        n.op,
        n.inputs.map(from),
        n.attrs,
        n.outputs.map((o) => ({ dtype: o.dtype, shape: o.shape })),
      );
      for (const [i, o] of n.outputs.entries()) map.set(o, copy.outputs[i]);
      return copy;
    });
  }
}
