// Counts the matmul FLOPs (2*M*K*N per product) a graph performs for concrete symbolic dims.
import type { Dim, Graph, Tensor } from "./graph.js";
import { liveNodes } from "./onnx.js";

function resolve(d: Dim, dims: Record<string, number>): number {
  if (typeof d === "number") return d;
  return d.split("*").reduce((p, part) => {
    if (/^\d+$/.test(part)) return p * Number(part);
    const [base, off] = part.split("-");
    const v = dims[base];
    if (v === undefined) throw new Error(`flops: no value for dim "${base}"`);
    return p * (off ? v - Number(off) : v);
  }, 1);
}

/** FLOPs of every MatMul needed to compute `roots` (default: the graph outputs). */
export function matmulFlops(graph: Graph, dims: Record<string, number>, roots?: Tensor[]): number {
  let total = 0;
  for (const n of liveNodes(graph, roots ?? graph.outputs.map((o) => o.tensor))) {
    if (n.op !== "MatMul") continue;
    const [a] = n.inputs;
    const out = n.outputs[0].shape.map((d) => resolve(d, dims));
    const k = resolve(n.attrs.transA ? a.shape[a.rank - 2] : a.shape[a.rank - 1], dims);
    total += 2 * k * out.reduce((p, q) => p * q, 1);
  }
  return total;
}
