// The graph IR: symbolic tensors (dtype + shape with named dims) and the nodes that produce them.
// A Graph is built by calling op functions (src/engine/ops.ts); it is later serialised to ONNX
// (src/engine/onnx.ts) and run by onnxruntime-node (src/engine/runtime.ts).

export type DType = "float32" | "float64" | "float16" | "int64" | "int32" | "bool" | "uint8";
/** A dimension: a number, or a symbolic name such as "batch", "seq" or a product "batch*seq". */
export type Dim = number | string;
export type Shape = Dim[];

export type TypedArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;

/** The typed array that holds values of a dtype (bool as 0/1 bytes). */
export function toTypedArray(dtype: DType, values: readonly number[]): TypedArray {
  switch (dtype) {
    case "float32":
      return Float32Array.from(values);
    case "float64":
      return Float64Array.from(values);
    case "int64":
      return BigInt64Array.from(values, (v) => BigInt(v));
    case "int32":
      return Int32Array.from(values);
    case "bool":
      return Uint8Array.from(values, (v) => (v ? 1 : 0));
    case "uint8":
      return Uint8Array.from(values);
    default:
      throw new Error(`no host array type for dtype ${dtype}`);
  }
}

/** How a leaf tensor gets its value. */
export type LeafKind = "input" | "param" | "initializer";

export class ShapeError extends Error {
  override name = "ShapeError";
}

export interface Node {
  /** Key of the op in the op table (src/engine/ops.ts). */
  op: string;
  inputs: Tensor[];
  /** Static information the op's emitter and VJP need (axes, perm, epsilon...). */
  attrs: Record<string, unknown>;
  outputs: Tensor[];
}

export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly dtype: DType,
    readonly shape: Shape,
    /** The node that computes this tensor, or null for a leaf. */
    readonly producer: Node | null,
    /** For leaves: input (fed per run), param (trainable, fed and updated), initializer (frozen, stored). */
    readonly leaf: LeafKind | null,
    public name: string,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}[${this.shape.join(", ")}]`;
  }
}

export interface Initializer {
  tensor: Tensor;
  data: TypedArray;
}

/**
 * A run of consecutive nodes (`start` ≤ index < `end` in Graph.nodes) whose forward values are
 * not kept for the backward pass: grad() recomputes them from the region's inputs once the
 * gradient reaches the region (gradient checkpointing, see Graph.recompute).
 */
export interface RecomputeRegion {
  start: number;
  end: number;
  /** Nodes of the region whose forward values are kept after all (selective checkpointing). */
  keep?: (n: Node) => boolean;
}

export class Graph {
  readonly nodes: Node[] = [];
  /** Regions recomputed in the backward pass (gradient checkpointing), in creation order. */
  readonly recomputed: RecomputeRegion[] = [];
  readonly inputs: Tensor[] = [];
  readonly params: Tensor[] = [];
  readonly initializers: Initializer[] = [];
  readonly outputs: { name: string; tensor: Tensor }[] = [];
  private nextId = 0;
  private readonly names = new Set<string>();
  /** Where each symbolic dim first appears among the inputs: used to read its runtime value. */
  readonly dimSources = new Map<string, { tensor: Tensor; axis: number }>();
  /** Per-graph caches used by ops (e.g. constants, runtime dim values). */
  readonly cache = new Map<string, Tensor>();

  private uniqueName(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  /** A value fed at every run (token ids, masks, labels...). */
  input(name: string, dtype: DType, shape: Shape): Tensor {
    const t = new Tensor(this, this.nextId++, dtype, [...shape], null, "input", this.uniqueName(name));
    if (t.name !== name) throw new Error(`graph input name "${name}" is already used`);
    shape.forEach((d, axis) => {
      if (typeof d === "string" && !d.includes("*") && !this.dimSources.has(d)) {
        this.dimSources.set(d, { tensor: t, axis });
      }
    });
    this.inputs.push(t);
    return t;
  }

  /** A trainable parameter: a graph input whose value the runtime keeps and the optimizer updates. */
  param(name: string, shape: number[], dtype: DType = "float32"): Tensor {
    const t = new Tensor(this, this.nextId++, dtype, [...shape], null, "param", this.uniqueName(name));
    if (t.name !== name) throw new Error(`parameter name "${name}" is already used`);
    this.params.push(t);
    return t;
  }

  /** A frozen value stored in the model (weights, constants). It never gets a gradient. */
  initializer(name: string, dtype: DType, shape: number[], data: TypedArray): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) {
      throw new ShapeError(
        `initializer ${name}: data has ${data.length} values but shape [${shape}] needs ${n}`,
      );
    }
    const t = new Tensor(this, this.nextId++, dtype, [...shape], null, "initializer", this.uniqueName(name));
    this.initializers.push({ tensor: t, data });
    return t;
  }

  /** Marks a tensor as a graph output under the given name. */
  output(name: string, tensor: Tensor): void {
    if (this.outputs.some((o) => o.name === name))
      throw new Error(`graph output "${name}" is already defined`);
    this.outputs.push({ name, tensor });
  }

  /** Used by ops: records a node and creates its output tensors. */
  addNode(
    op: string,
    inputs: Tensor[],
    attrs: Record<string, unknown>,
    outTypes: { dtype: DType; shape: Shape }[],
  ): Node {
    for (const t of inputs) {
      if (t.graph !== this) throw new Error(`op ${op}: input ${t.name} belongs to another graph`);
    }
    const node: Node = { op, inputs, attrs, outputs: [] };
    node.outputs = outTypes.map(
      (o, i) =>
        new Tensor(
          this,
          this.nextId++,
          o.dtype,
          o.shape,
          node,
          null,
          this.uniqueName(`${op.toLowerCase()}${outTypes.length > 1 ? `_o${i}` : ""}`),
        ),
    );
    this.nodes.push(node);
    return node;
  }

  /**
   * Builds the nodes of `fn` as a recomputed region: grad() does not keep their values from the
   * forward to the backward pass but builds them again from the region's inputs, ordered after the
   * incoming gradient (a transformer layer: only its input stays alive). Gradients are unchanged.
   * `keep` names nodes whose outputs are kept from the forward pass instead (see keepCostly).
   */
  recompute<T>(fn: () => T, keep?: (n: Node) => boolean): T {
    const start = this.nodes.length;
    const result = fn();
    if (this.nodes.length > start)
      this.recomputed.push({ start, end: this.nodes.length, ...(keep ? { keep } : {}) });
    return result;
  }

  /** Gives a tensor a readable name (used for graph outputs and debugging); returns it. */
  rename(t: Tensor, name: string): Tensor {
    this.names.delete(t.name);
    t.name = this.uniqueName(name);
    return t;
  }
}

/**
 * Selective checkpointing's rule: keep the costly values of a layer, recompute the cheap rest
 * (norms, attention, activations, LoRA). Kept: the products with frozen weight matrices (a
 * quantized base's QMatMul, a MatMul by an initializer) and the dropout keep-masks (bool; the
 * counter-based generator costs about as much as the layer's other elementwise work). A Llama
 * layer of llm-jp-3-1.8b keeps ~60 MB at 512 tokens against ~146 MB of everything and 4 MB of
 * full recomputation.
 */
export function keepCostly(n: Node): boolean {
  if (n.op === "QMatMul" || n.op === "DropoutMask") return true;
  return n.op === "MatMul" && n.inputs.some((t) => t.leaf === "initializer" && t.rank === 2);
}

// ---- symbolic dimension arithmetic ----------------------------------------------------------

interface Factored {
  coef: number;
  syms: string[];
}

function factor(d: Dim): Factored {
  if (typeof d === "number") return { coef: d, syms: [] };
  let coef = 1;
  const syms: string[] = [];
  for (const part of d.split("*")) {
    if (/^\d+$/.test(part)) coef *= Number(part);
    else syms.push(part);
  }
  return { coef, syms: syms.sort() };
}

function unfactor(f: Factored): Dim {
  if (f.syms.length === 0) return f.coef;
  return [...(f.coef === 1 ? [] : [String(f.coef)]), ...f.syms].join("*");
}

/** Product of dims, canonical so that equal products compare equal ("batch*seq"). */
export function dimProduct(dims: Dim[]): Dim {
  let coef = 1;
  const syms: string[] = [];
  for (const d of dims) {
    const f = factor(d);
    coef *= f.coef;
    syms.push(...f.syms);
  }
  return unfactor({ coef, syms: syms.sort() });
}

/** a / b when b's factors divide a's; undefined when that cannot be decided statically. */
export function dimQuotient(a: Dim, b: Dim): Dim | undefined {
  const fa = factor(a);
  const fb = factor(b);
  if (fb.coef === 0 || fa.coef % fb.coef !== 0) return undefined;
  const syms = [...fa.syms];
  for (const s of fb.syms) {
    const i = syms.indexOf(s);
    if (i < 0) return undefined;
    syms.splice(i, 1);
  }
  return unfactor({ coef: fa.coef / fb.coef, syms });
}

export function sameDim(a: Dim, b: Dim): boolean {
  return dimProduct([a]) === dimProduct([b]);
}

export function shapeStr(s: Shape): string {
  return `[${s.join(", ")}]`;
}

export function isFloat(d: DType): boolean {
  return d === "float32" || d === "float64" || d === "float16";
}
