// The op table: for every op, its forward definition (shape inference + ONNX emission) and its
// vector-Jacobian product (VJP) side by side, the way PyTorch's derivatives.yaml keeps them.
//
// A VJP receives the gradients of the node's outputs (zeros where an output does not influence the
// loss) and `needs[i]`, whether input i needs a gradient at all; it returns one gradient per input
// (null for "none"). Rules only build the gradients that are needed, so a frozen weight costs no dW.
// Ops without `vjp` are not differentiable (comparisons, shapes, casts to integers...).

import { NF4_LEVELS as NF4_TABLE } from "../quant/codecs.js";
import type { QGemmAttrs } from "../quant/qgemm.js";
import type { QuantAttrs } from "../quant/weights.js";
import type { Emitter } from "./emitter.js";
import {
  type Dim,
  type DType,
  dimProduct,
  dimQuotient,
  type Graph,
  isFloat,
  type Node,
  type Shape,
  ShapeError,
  sameDim,
  shapeStr,
  type Tensor,
  toTypedArray,
} from "./graph.js";

type OutType = { dtype: DType; shape: Shape };
type Grad = Tensor | null;

export interface OpDef {
  /** Output types from input tensors and attributes; throws ShapeError naming the op and shapes. */
  infer(inputs: Tensor[], attrs: Record<string, unknown>): OutType[];
  /** Writes the ONNX node(s) computing `outs` from `ins` (value names). */
  emit(e: Emitter, ins: string[], outs: string[], node: Node): void;
  /** Gradients of the inputs given the gradients of the outputs. */
  vjp?(grads: Tensor[], node: Node, needs: boolean[]): Grad[];
}

/** Largest value ONNX Slice accepts as "to the end". */
export const TO_END = 2 ** 62;

// ---- helpers --------------------------------------------------------------------------------

function fail(op: string, msg: string, inputs: Tensor[]): never {
  throw new ShapeError(
    `${op}: ${msg} (inputs: ${inputs.map((t) => `${t.name}${shapeStr(t.shape)}`).join(", ")})`,
  );
}

function normAxis(op: string, axis: number, rank: number, inputs: Tensor[]): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) fail(op, `axis ${axis} out of range for rank ${rank}`, inputs);
  return a;
}

function sameDtype(op: string, inputs: Tensor[]): DType {
  const d = inputs[0].dtype;
  for (const t of inputs)
    if (t.dtype !== d) fail(op, `dtypes differ (${inputs.map((x) => x.dtype).join(" vs ")})`, inputs);
  return d;
}

/** Numpy broadcasting of two static/symbolic shapes. Symbolic dims must match by name. */
export function broadcastShapes(op: string, inputs: Tensor[]): Shape {
  const rank = Math.max(...inputs.map((t) => t.rank));
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const t of inputs) {
      const td = t.shape[t.rank - rank + i] ?? 1;
      if (td === 1) continue;
      if (d === 1) d = td;
      else if (!sameDim(d, td)) fail(op, `shapes do not broadcast at axis ${i} (${d} vs ${td})`, inputs);
    }
    out.push(d);
  }
  return out;
}

const simple =
  (onnxOp: string, domain?: string) =>
  (e: Emitter, ins: string[], outs: string[]): void =>
    e.node(onnxOp, ins, outs, {}, domain);

function unary(onnxOp: string, vjp?: OpDef["vjp"]): OpDef {
  return {
    infer: ([x], a) => {
      if (!isFloat(x.dtype) && !a.anyType) fail(onnxOp, `needs a float input, got ${x.dtype}`, [x]);
      return [{ dtype: x.dtype, shape: x.shape }];
    },
    emit: simple(onnxOp),
    vjp,
  };
}

function binary(onnxOp: string, vjp?: OpDef["vjp"]): OpDef {
  return {
    infer: (ins) => [{ dtype: sameDtype(onnxOp, ins), shape: broadcastShapes(onnxOp, ins) }],
    emit: simple(onnxOp),
    vjp,
  };
}

function compare(onnxOp: string): OpDef {
  return {
    infer: (ins) => {
      sameDtype(onnxOp, ins);
      return [{ dtype: "bool", shape: broadcastShapes(onnxOp, ins) }];
    },
    emit: simple(onnxOp),
  };
}

function reduceInfer(op: string) {
  return ([x]: Tensor[], a: Record<string, unknown>): OutType[] => {
    const axes = (a.axes as number[]).map((ax) => normAxis(op, ax, x.rank, [x]));
    const keep = a.keepdims as boolean;
    const shape = x.shape.flatMap((d, i) => (axes.includes(i) ? (keep ? [1] : []) : [d]));
    return [{ dtype: x.dtype, shape }];
  };
}

function reduceEmit(onnxOp: string) {
  return (e: Emitter, ins: string[], outs: string[], n: Node): void => {
    const axes = (n.attrs.axes as number[]).map((ax) => (ax < 0 ? ax + n.inputs[0].rank : ax));
    e.node(onnxOp, [ins[0], e.constI64(axes)], outs, { keepdims: { i: n.attrs.keepdims ? 1 : 0 } });
  };
}

// ---- the op table ---------------------------------------------------------------------------

export const OPS: Record<string, OpDef> = {
  // Elementwise arithmetic (numpy broadcasting; gradients are summed back to each input's shape).
  Add: binary("Add", ([g], { inputs: [a, b] }, needs) => [
    needs[0] ? sumTo(g, a.shape) : null,
    needs[1] ? sumTo(g, b.shape) : null,
  ]),
  Sub: binary("Sub", ([g], { inputs: [a, b] }, needs) => [
    needs[0] ? sumTo(g, a.shape) : null,
    needs[1] ? sumTo(neg(g), b.shape) : null,
  ]),
  Mul: binary("Mul", ([g], { inputs: [a, b] }, needs) => [
    needs[0] ? sumTo(mul(g, b), a.shape) : null,
    needs[1] ? sumTo(mul(g, a), b.shape) : null,
  ]),
  Div: binary("Div", ([g], { inputs: [a, b], outputs: [y] }, needs) => [
    needs[0] ? sumTo(div(g, b), a.shape) : null,
    needs[1] ? sumTo(neg(div(mul(g, y), b)), b.shape) : null,
  ]),
  // x ** p for a constant exponent p.
  Pow: {
    infer: ([x]) => [{ dtype: x.dtype, shape: x.shape }],
    emit: (e, ins, outs, n) =>
      e.node("Pow", [ins[0], e.constScalar(n.attrs.p as number, n.inputs[0].dtype)], outs),
    vjp: ([g], { inputs: [x], attrs }) => {
      const p = attrs.p as number;
      return [mul(g, scale(pow(x, p - 1), p))];
    },
  },
  // base ** exponent with both as tensors (used for optimizer bias corrections; no gradient).
  PowTensor: binary("Pow"),
  Neg: unary("Neg", ([g]) => [neg(g)]),
  Abs: unary("Abs", ([g], { inputs: [x] }) => [mul(g, sign(x))]),
  // Piecewise constant: its derivative is zero wherever it exists.
  Sign: unary("Sign", () => [null]),
  Sqrt: unary("Sqrt", ([g], { outputs: [y] }) => [div(scale(g, 0.5), y)]),
  Reciprocal: unary("Reciprocal", ([g], { outputs: [y] }) => [neg(mul(g, mul(y, y)))]),
  Exp: unary("Exp", ([g], { outputs: [y] }) => [mul(g, y)]),
  Log: unary("Log", ([g], { inputs: [x] }) => [div(g, x)]),
  Tanh: unary("Tanh", ([g], { outputs: [y] }) => [mul(g, rsub(1, mul(y, y)))]),
  // d/dx erf(x) = 2/sqrt(pi) * exp(-x^2)
  Erf: unary("Erf", ([g], { inputs: [x] }) => [mul(g, scale(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))]),
  Sigmoid: unary("Sigmoid", ([g], { outputs: [y] }) => [mul(g, mul(y, rsub(1, y)))]),
  Relu: unary("Relu", ([g], { inputs: [x] }) => [mul(g, cast(greater(x, scalarLike(x, 0)), x.dtype))]),
  // GELU, exact (erf) or tanh approximation, as ONNX Gelu (opset 20).
  Gelu: {
    infer: ([x]) => [{ dtype: x.dtype, shape: x.shape }],
    emit: (e, ins, outs, n) =>
      e.node("Gelu", ins, outs, { approximate: { s: n.attrs.approximate as string } }),
    vjp: ([g], { inputs: [x], attrs }) => [mul(g, geluDerivative(x, attrs.approximate as string))],
  },

  // Comparisons and logic: no gradients.
  Equal: compare("Equal"),
  Less: compare("Less"),
  Greater: compare("Greater"),
  Not: {
    infer: ([x]) => [{ dtype: "bool", shape: x.shape }],
    emit: simple("Not"),
  },
  And: {
    infer: (ins) => [{ dtype: "bool", shape: broadcastShapes("And", ins) }],
    emit: simple("And"),
  },
  Where: {
    infer: (ins) => {
      const [c, a, b] = ins;
      if (c.dtype !== "bool") fail("Where", `condition must be bool, got ${c.dtype}`, ins);
      return [{ dtype: sameDtype("Where", [a, b]), shape: broadcastShapes("Where", ins) }];
    },
    emit: simple("Where"),
    vjp: ([g], { inputs: [c, a, b] }, needs) => {
      const zero = scalarLike(g, 0);
      return [
        null,
        needs[1] ? sumTo(where(c, g, zero), a.shape) : null,
        needs[2] ? sumTo(where(c, zero, g), b.shape) : null,
      ];
    },
  },
  Cast: {
    infer: ([x], a) => [{ dtype: a.to as DType, shape: x.shape }],
    emit: (e, ins, outs, n) => e.node("Cast", ins, outs, { to: { i: onnxDtype(n.attrs.to as DType) } }),
    vjp: ([g], { inputs: [x] }) => [isFloat(x.dtype) ? cast(g, x.dtype) : null],
  },

  // Matrix product of the last two axes, batch axes broadcast. transA/transB/alpha use the
  // com.microsoft FusedMatMul kernel so no transposed copy is materialised.
  MatMul: {
    infer: (ins, a) => {
      const [x, w] = ins;
      sameDtype("MatMul", ins);
      if (x.rank < 2 || w.rank < 2) fail("MatMul", "operands need rank >= 2", ins);
      const [m, k1] = a.transA
        ? [x.shape[x.rank - 1], x.shape[x.rank - 2]]
        : [x.shape[x.rank - 2], x.shape[x.rank - 1]];
      const [k2, n] = a.transB
        ? [w.shape[w.rank - 1], w.shape[w.rank - 2]]
        : [w.shape[w.rank - 2], w.shape[w.rank - 1]];
      if (!sameDim(k1, k2)) fail("MatMul", `inner dimensions differ (${k1} vs ${k2})`, ins);
      const batch = broadcastShapes("MatMul", [
        { ...x, shape: x.shape.slice(0, -2), rank: x.rank - 2 } as Tensor,
        { ...w, shape: w.shape.slice(0, -2), rank: w.rank - 2 } as Tensor,
      ]);
      return [{ dtype: x.dtype, shape: [...batch, m, n] }];
    },
    emit: (e, ins, outs, n) => {
      const { transA, transB, alpha } = n.attrs as { transA: boolean; transB: boolean; alpha: number };
      if (!transA && !transB && alpha === 1) return e.node("MatMul", ins, outs);
      if (n.inputs[0].dtype === "float32") {
        return e.node(
          "FusedMatMul",
          ins,
          outs,
          { transA: { i: transA ? 1 : 0 }, transB: { i: transB ? 1 : 0 }, alpha: { f: alpha } },
          "com.microsoft",
        );
      }
      // FusedMatMul is float32-only in onnxruntime: other dtypes transpose explicitly.
      const swapLast = (name: string, rank: number): string => {
        const t = e.tmp("t");
        const perm = [...Array(rank).keys()];
        [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
        e.node("Transpose", [name], [t], { perm: { ints: perm } });
        return t;
      };
      const a = transA ? swapLast(ins[0], n.inputs[0].rank) : ins[0];
      const b = transB ? swapLast(ins[1], n.inputs[1].rank) : ins[1];
      if (alpha === 1) return e.node("MatMul", [a, b], outs);
      const p = e.tmp("mm");
      e.node("MatMul", [a, b], [p]);
      e.node("Mul", [p, e.constScalar(alpha, n.inputs[0].dtype)], outs);
    },
    vjp: ([g], { inputs: [x, w], attrs }, needs) =>
      matmulVjp(g, x, w, attrs as unknown as MatMulAttrs, needs),
  },

  // y = x · Wᵀ with W [n, k] stored quantized (src/quant/codecs.ts): inputs x, codes, scales.
  // Forward: onnxruntime's fused kernels (no float copy of W): MatMulNBits for int4/int8,
  // MatMulBnb4 for NF4. Backward (dx = g · W): W is dequantized per layer (Dequant below), made to
  // wait for g so that the float copy lives only for that one MatMul.
  QMatMul: {
    infer: (ins, a) => {
      const [x, codes, scales] = ins;
      const { n, k } = a as unknown as QuantAttrs;
      if (x.dtype !== "float32") fail("QMatMul", "needs float32 activations", ins);
      if (codes.dtype !== "uint8" || scales.dtype !== "float32")
        fail("QMatMul", "needs uint8 codes and float32 scales", ins);
      if (!sameDim(x.shape[x.rank - 1], k))
        fail("QMatMul", `inner dimensions differ (${x.shape[x.rank - 1]} vs ${k})`, ins);
      return [{ dtype: "float32", shape: [...x.shape.slice(0, -1), n] }];
    },
    emit: (e, ins, outs, node) => {
      const a = node.attrs as unknown as QuantAttrs;
      if (a.scheme === "int8" && a.accuracyLevel === undefined) {
        // MatMulNBits' 8-bit path at float32 accuracy measured 1.5x float32's MatMul on this CPU;
        // the layer's weights dequantized in one standard op, then float32's GEMM: 1.1x.
        const wT = e.tmp("w_t");
        e.node("Transpose", [int8DequantizeLinear(e, ins[1], ins[2], ins[0], a)], [wT], {
          perm: { ints: [1, 0] },
        });
        return e.node("MatMul", [ins[0], wT], outs);
      }
      const common = { K: { i: a.k }, N: { i: a.n }, block_size: { i: a.blockSize } };
      if (a.scheme === "nf4")
        return e.node("MatMulBnb4", ins, outs, { ...common, quant_type: { i: 1 } }, "com.microsoft");
      e.node(
        "MatMulNBits",
        ins,
        outs,
        { ...common, bits: { i: a.scheme === "int4" ? 4 : 8 }, accuracy_level: { i: a.accuracyLevel ?? 0 } },
        "com.microsoft",
      );
    },
    vjp: ([g], { inputs: [, codes, scales], attrs }, needs) => [
      needs[0] ? matmul(g, dequantize(codes, scales, attrs as unknown as QuantAttrs, g)) : null,
      null,
      null,
    ],
  },
  // W [n, k] float32 from its codes and scales; `after` only orders the work (see QMatMul) and
  // keeps onnxruntime from folding the dequantized copy into a float32 constant.
  Dequant: {
    infer: (_ins, a) => [
      { dtype: "float32", shape: [(a as unknown as QuantAttrs).n, (a as unknown as QuantAttrs).k] },
    ],
    emit: (e, ins, outs, node) => {
      const { n, k, blockSize: bs, scheme } = node.attrs as unknown as QuantAttrs;
      // int8: [codes, scales, after]; the others read a lookup table: [codes, scales, table, after].
      const [codes, scales, table] = ins;
      const after = ins[ins.length - 1];
      if (scheme === "int8") {
        return e.node(
          "Identity",
          [int8DequantizeLinear(e, codes, scales, after, node.attrs as unknown as QuantAttrs)],
          outs,
        );
      }
      const flat = reshapeAfter(e, codes, [after], { shape: [-1] });
      const idx = e.tmp("idx");
      e.node("Cast", [flat], [idx], { to: { i: onnxDtype("int32") } });
      // One table lookup turns each byte into its value(s): [bytes, perByte] = blocks of bs values.
      const vals = e.tmp("vals");
      e.node("Gather", [table, idx], [vals], { axis: { i: 0 } });
      const blocks = scheme === "nf4" ? Math.ceil((n * k) / bs) : n * Math.ceil(k / bs);
      const byBlock = e.tmp("blocks");
      e.node("Reshape", [vals, e.constI64([blocks, bs])], [byBlock]);
      const sc = e.tmp("scales");
      e.node("Reshape", [scales, e.constI64([blocks, 1])], [sc]);
      const scaled = e.tmp("scaled");
      e.node("Mul", [byBlock, sc], [scaled]);
      const width = scheme === "nf4" ? k : Math.ceil(k / bs) * bs;
      if (width === k) return e.node("Reshape", [scaled, e.constI64([n, k])], outs);
      const padded = e.tmp("padded");
      e.node("Reshape", [scaled, e.constI64([n, width])], [padded]);
      e.node("Slice", [padded, e.constI64([0]), e.constI64([k]), e.constI64([1])], outs);
    },
  },

  // y = x · Wᵀ on onnxruntime's int8 QGEMM, for prediction graphs only (no gradient): W [n, k] =
  // q · scale[n], q int8 per output channel (src/quant/qgemm.ts). The file keeps q as uint8 codes
  // (q + 128, [n, k]), or for int4 as MatMulNBits' packed nibbles and block scales that are
  // requantized to q in the graph; either way those nodes read only initializers, so onnxruntime
  // folds them at session creation and the kernel packs a constant int8 B once. Activations go
  // DynamicQuantizeLinear (uint8, per tensor) → MatMulInteger → ·scale, standard ONNX that
  // onnxruntime fuses into com.microsoft DynamicQuantizeMatMul (MLAS u8s8 kernels, VNNI).
  QGemm: {
    infer: (ins, a) => {
      const [x, codes] = ins;
      const { n, k } = a as unknown as QGemmAttrs;
      if (x.dtype !== "float32") fail("QGemm", "needs float32 activations", ins);
      if (codes.dtype !== "uint8" || ins.slice(2).some((t) => t.dtype !== "float32"))
        fail("QGemm", "needs uint8 codes and float32 scales", ins);
      if (!sameDim(x.shape[x.rank - 1], k))
        fail("QGemm", `inner dimensions differ (${x.shape[x.rank - 1]} vs ${k})`, ins);
      return [{ dtype: "float32", shape: [...x.shape.slice(0, -1), n] }];
    },
    emit: (e, ins, outs, node) => {
      const a = node.attrs as unknown as QGemmAttrs;
      const scales = ins[ins.length - 1];
      const q = a.source === "int4" ? int4ToInt8(e, ins[1], ins[2], scales, a) : uint8ToInt8(e, ins[1]);
      const bT = e.tmp("qgemm_b");
      e.node("Transpose", [q], [bT], { perm: { ints: [1, 0] } });
      const [xq, xs, xz] = [e.tmp("xq"), e.tmp("xs"), e.tmp("xz")];
      e.node("DynamicQuantizeLinear", [ins[0]], [xq, xs, xz]);
      const yi = e.tmp("yi");
      e.node("MatMulInteger", [xq, bT, xz], [yi]);
      const yf = e.tmp("yf");
      e.node("Cast", [yi], [yf], { to: { i: onnxDtype("float32") } });
      const m = e.tmp("multiplier");
      e.node("Mul", [xs, scales], [m]);
      e.node("Mul", [yf, m], outs);
    },
  },

  Softmax: {
    infer: ([x], a) => {
      normAxis("Softmax", a.axis as number, x.rank, [x]);
      return [{ dtype: x.dtype, shape: x.shape }];
    },
    emit: (e, ins, outs, n) => e.node("Softmax", ins, outs, { axis: { i: n.attrs.axis as number } }),
    // dx = y * (g - sum(g * y, axis))
    vjp: ([g], { outputs: [y], attrs }) => {
      const ax = attrs.axis as number;
      return [mul(y, sub(g, reduceSum(mul(g, y), [ax], true)))];
    },
  },

  // LayerNormalization over the last axis; outputs Y and the saved Mean / InvStdDev for the VJP.
  LayerNorm: {
    infer: (ins, a) => {
      const [x, w, b] = ins;
      sameDtype("LayerNorm", ins);
      const h = x.shape[x.rank - 1];
      if (w.rank !== 1 || !sameDim(w.shape[0], h)) fail("LayerNorm", `weight must be [${h}]`, ins);
      if (b && (b.rank !== 1 || !sameDim(b.shape[0], h))) fail("LayerNorm", `bias must be [${h}]`, ins);
      void a;
      const stat = [...x.shape.slice(0, -1), 1];
      return [
        { dtype: x.dtype, shape: x.shape },
        { dtype: x.dtype, shape: stat },
        { dtype: x.dtype, shape: stat },
      ];
    },
    emit: (e, ins, outs, n) =>
      e.node("LayerNormalization", ins, outs, {
        axis: { i: -1 },
        epsilon: { f: n.attrs.eps as number },
        stash_type: { i: onnxDtype(n.inputs[0].dtype) },
      }),
    vjp: ([g], { inputs: [x, w, b], outputs: [, mean, invstd] }, needs) => {
      const xhat = mul(sub(x, mean), invstd);
      const dx = needs[0]
        ? (() => {
            const dxhat = mul(g, w);
            const m1 = reduceMean(dxhat, [-1], true);
            const m2 = reduceMean(mul(dxhat, xhat), [-1], true);
            return mul(invstd, sub(sub(dxhat, m1), mul(xhat, m2)));
          })()
        : null;
      return [dx, needs[1] ? sumTo(mul(g, xhat), w.shape) : null, b && needs[2] ? sumTo(g, b.shape) : null];
    },
  },

  ReduceSum: {
    infer: reduceInfer("ReduceSum"),
    emit: reduceEmit("ReduceSum"),
    vjp: ([g], { inputs: [x], attrs }) => [expandTo(keepDims(g, x, attrs), x)],
  },
  ReduceMean: {
    infer: reduceInfer("ReduceMean"),
    emit: reduceEmit("ReduceMean"),
    vjp: ([g], { inputs: [x], attrs }) => {
      const axes = (attrs.axes as number[]).map((a) => (a < 0 ? a + x.rank : a));
      const count = dimProduct(axes.map((a) => x.shape[a]));
      return [div(expandTo(keepDims(g, x, attrs), x), dimAsScalar(x.graph, count, x.dtype))];
    },
  },
  // The gradient goes to the maximal elements, split evenly between ties (as torch.amax).
  ReduceMax: {
    infer: reduceInfer("ReduceMax"),
    emit: reduceEmit("ReduceMax"),
    vjp: ([g], { inputs: [x], outputs: [y], attrs }) => {
      const yk = keepDims(y, x, attrs);
      const mask = cast(equal(x, yk), x.dtype);
      const count = reduceSum(mask, attrs.axes as number[], true);
      return [div(mul(mask, keepDims(g, x, attrs)), count)];
    },
  },

  // Shapes. `shape` input (optional) is a runtime int64 shape when the target has symbolic dims.
  Reshape: {
    infer: (ins, a) => {
      const [x] = ins;
      const target = a.shape as Shape;
      const pIn = dimProduct(x.shape);
      const pOut = dimProduct(target);
      // Only provably different sizes are an error ("seq-1" style dims cannot be compared).
      if (pIn !== pOut && !`${pIn}${pOut}`.includes("-")) {
        fail("Reshape", `cannot reshape ${shapeStr(x.shape)} to ${shapeStr(target)}`, ins);
      }
      return [{ dtype: x.dtype, shape: target }];
    },
    emit: (e, ins, outs, n) => {
      const spec = n.attrs.spec as number[] | undefined;
      e.node("Reshape", [ins[0], spec ? e.constI64(spec) : ins[1]], outs);
    },
    vjp: ([g], { inputs: [x] }) => [reshape(g, x.shape)],
  },
  Transpose: {
    infer: ([x], a) => {
      const perm = a.perm as number[];
      if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) {
        fail("Transpose", `perm [${perm}] is not a permutation of rank ${x.rank}`, [x]);
      }
      return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]) }];
    },
    emit: (e, ins, outs, n) => e.node("Transpose", ins, outs, { perm: { ints: n.attrs.perm as number[] } }),
    vjp: ([g], { attrs }) => {
      const perm = attrs.perm as number[];
      const inv = perm.map((_, i) => perm.indexOf(i));
      return [transpose(g, inv)];
    },
  },
  Concat: {
    infer: (ins, a) => {
      const axis = normAxis("Concat", a.axis as number, ins[0].rank, ins);
      const dtype = sameDtype("Concat", ins);
      const shape = [...ins[0].shape];
      for (const t of ins.slice(1)) {
        if (t.rank !== shape.length) fail("Concat", "ranks differ", ins);
        t.shape.forEach((d, i) => {
          if (i !== axis && !sameDim(d, shape[i])) fail("Concat", `dims differ at axis ${i}`, ins);
        });
      }
      let total: Dim = 0;
      for (const t of ins) {
        const d = t.shape[axis];
        if (typeof d !== "number" || typeof total !== "number")
          fail("Concat", "concat axis must be static", ins);
        total += d;
      }
      shape[axis] = total;
      return [{ dtype, shape }];
    },
    emit: (e, ins, outs, n) => e.node("Concat", ins, outs, { axis: { i: n.attrs.axis as number } }),
    vjp: ([g], { inputs, attrs }, needs) => {
      const axis = attrs.axis as number;
      const sizes = inputs.map((t) => t.shape[axis < 0 ? axis + t.rank : axis] as number);
      const parts = split(g, axis, sizes);
      return parts.map((p, i) => (needs[i] ? p : null));
    },
  },
  Split: {
    infer: ([x], a) => {
      const axis = normAxis("Split", a.axis as number, x.rank, [x]);
      const sizes = a.sizes as number[];
      const d = x.shape[axis];
      const total = sizes.reduce((p, q) => p + q, 0);
      if (typeof d !== "number" || d !== total) fail("Split", `sizes [${sizes}] do not add up to ${d}`, [x]);
      return sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((dd, i) => (i === axis ? s : dd)) }));
    },
    emit: (e, ins, outs, n) =>
      e.node("Split", [ins[0], e.constI64(n.attrs.sizes as number[])], outs, {
        axis: { i: n.attrs.axis as number },
      }),
    vjp: (grads, { attrs }) => [concat(grads, attrs.axis as number)],
  },
  // Static slice along some axes (non-negative starts; ends may be TO_END).
  Slice: {
    infer: ([x], a) => {
      const { starts, ends, axes } = a as { starts: number[]; ends: number[]; axes: number[] };
      const shape = [...x.shape];
      axes.forEach((ax0, i) => {
        const ax = normAxis("Slice", ax0, x.rank, [x]);
        const d = x.shape[ax];
        if (starts[i] < 0 || ends[i] < starts[i]) fail("Slice", `bad range ${starts[i]}:${ends[i]}`, [x]);
        if (typeof d === "number") shape[ax] = Math.max(0, Math.min(ends[i], d) - Math.min(starts[i], d));
        else if (ends[i] >= TO_END) shape[ax] = starts[i] === 0 ? d : `${d}-${starts[i]}`;
        else shape[ax] = ends[i] - starts[i];
      });
      return [{ dtype: x.dtype, shape }];
    },
    emit: (e, ins, outs, n) => {
      const { starts, ends, axes } = n.attrs as { starts: number[]; ends: number[]; axes: number[] };
      e.node("Slice", [ins[0], e.constI64(starts), e.constI64(ends), e.constI64(axes)], outs);
    },
    vjp: ([g], { inputs: [x], attrs }) => [
      sliceGrad(g, x, attrs as unknown as { starts: number[]; ends: number[]; axes: number[] }),
    ],
  },
  // Zero padding (constant mode); `pads` is a runtime int64 tensor [2*rank] (begins then ends).
  Pad: {
    infer: ([x], a) => [{ dtype: x.dtype, shape: a.shape as Shape }],
    emit: simple("Pad"),
  },
  Unsqueeze: {
    infer: ([x], a) => {
      const axes = (a.axes as number[]).map((ax) =>
        ax < 0 ? ax + x.rank + (a.axes as number[]).length : ax,
      );
      const shape = [...x.shape];
      for (const ax of [...axes].sort((p, q) => p - q)) shape.splice(ax, 0, 1);
      return [{ dtype: x.dtype, shape }];
    },
    emit: (e, ins, outs, n) => e.node("Unsqueeze", [ins[0], e.constI64(n.attrs.axes as number[])], outs),
    vjp: ([g], { inputs: [x] }) => [reshape(g, x.shape)],
  },
  Squeeze: {
    infer: ([x], a) => {
      const axes = (a.axes as number[]).map((ax) => normAxis("Squeeze", ax, x.rank, [x]));
      for (const ax of axes)
        if (x.shape[ax] !== 1) fail("Squeeze", `axis ${ax} has size ${x.shape[ax]}, not 1`, [x]);
      return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !axes.includes(i)) }];
    },
    emit: (e, ins, outs, n) => e.node("Squeeze", [ins[0], e.constI64(n.attrs.axes as number[])], outs),
    vjp: ([g], { inputs: [x] }) => [reshape(g, x.shape)],
  },
  // Broadcast x to `shape` (second input: runtime int64 shape).
  Expand: {
    infer: ([x], a) => {
      const target = a.shape as Shape;
      const probe = { shape: target, rank: target.length, name: "target" } as Tensor;
      return [{ dtype: x.dtype, shape: broadcastShapes("Expand", [x, probe]) }];
    },
    emit: simple("Expand"),
    vjp: ([g], { inputs: [x] }) => [sumTo(g, x.shape)],
  },
  Shape: {
    infer: ([x]) => [{ dtype: "int64", shape: [x.rank] }],
    emit: simple("Shape"),
  },
  ConstantOfShape: {
    infer: (_ins, a) => [{ dtype: a.dtype as DType, shape: a.shape as Shape }],
    emit: (e, ins, outs, n) =>
      e.node("ConstantOfShape", ins, outs, {
        value: { t: { dtype: n.attrs.dtype as DType, dims: [1], values: [n.attrs.value as number] } },
      }),
  },
  Range: {
    infer: ([start], a) => [{ dtype: start.dtype, shape: [a.length as Dim] }],
    emit: simple("Range"),
  },
  CumSum: {
    infer: ([x]) => [{ dtype: x.dtype, shape: x.shape }],
    emit: (e, ins, outs, n) => e.node("CumSum", [ins[0], e.constI64([n.attrs.axis as number], [])], outs),
  },

  // Rows of a table (axis 0) at integer indices: embeddings, pooling. Its VJP scatters-adds rows back.
  Gather: {
    infer: (ins) => {
      const [x, idx] = ins;
      if (idx.dtype !== "int64" && idx.dtype !== "int32") fail("Gather", "indices must be int64/int32", ins);
      return [{ dtype: x.dtype, shape: [...idx.shape, ...x.shape.slice(1)] }];
    },
    emit: (e, ins, outs) => e.node("Gather", ins, outs, { axis: { i: 0 } }),
    vjp: ([g], { inputs: [x, idx] }) => [scatterAddRows(g, idx, x)],
  },
  // zeros(like) with rows `idx` accumulating `updates` (ScatterND, reduction "add").
  ScatterAddRows: {
    infer: ([, , like]) => [{ dtype: like.dtype, shape: like.shape }],
    emit: (e, ins, outs, n) => {
      const [updates, idx, like] = ins;
      const shape = e.tmp("shape");
      e.node("Shape", [like], [shape]);
      const zeros = e.tmp("zeros");
      e.node("ConstantOfShape", [shape], [zeros], {
        value: { t: { dtype: n.inputs[2].dtype, dims: [1], values: [0] } },
      });
      // ScatterND takes int64 indices only; Gather also accepts int32.
      const idx64 = n.inputs[1].dtype === "int64" ? idx : castTo(e, idx, "int64");
      const idx1 = e.tmp("idx");
      e.node("Unsqueeze", [idx64, e.constI64([-1])], [idx1]);
      e.node("ScatterND", [zeros, idx1, updates], outs, { reduction: { s: "add" } });
    },
  },

  // Training-mode dropout's bool keep-mask, shaped like x (see dropout()). The mask is a pure
  // function of the int64 graph input `dropout_key` and the element's position, so a run is
  // reproducible and can resume mid-way (onnxruntime's Dropout seeds once per session instead).
  // Not differentiable (bool); x only gives the shape.
  DropoutMask: {
    infer: ([x, key]) => {
      if (key.dtype !== "int64" || key.rank !== 0)
        fail("DropoutMask", "the key must be an int64 scalar", [x, key]);
      return [{ dtype: "bool", shape: x.shape }];
    },
    emit: (e, [x, key], [mask], n) => {
      const keep = e.tmp("keep");
      emitKeepMask(e, x, key, n.attrs.stream as number, n.attrs.ratio as number, keep);
      e.node("Reshape", [keep, shapeOf(e, x)], [mask]);
    },
  },

  // Elementwise binary cross-entropy on logits, PyTorch's stable form:
  //   l = (1 - y) x + w (log(1 + exp(-|x|)) + max(-x, 0)),  w = 1 + (pos_weight - 1) y
  // Its VJP uses the closed form dl/dx = (1 - y) - w (1 - sigmoid(x)), exact also at x = 0.
  BCEWithLogits: {
    infer: (ins) => {
      const [x, y, pw] = ins;
      sameDtype("BCEWithLogits", ins);
      if (!sameShape(x.shape, y.shape)) fail("BCEWithLogits", "logits and targets differ in shape", ins);
      if (pw) broadcastShapes("BCEWithLogits", [x, pw]);
      return [{ dtype: x.dtype, shape: x.shape }];
    },
    emit: (e, ins, outs, n) => {
      const dt = n.inputs[0].dtype;
      const [x, y, pw] = ins;
      const one = e.constScalar(1, dt);
      const t = (op: string, inputs: string[]): string => {
        const o = e.tmp(op.toLowerCase());
        e.node(op, inputs, [o]);
        return o;
      };
      const sp = t("Add", [
        t("Log", [t("Add", [one, t("Exp", [t("Neg", [t("Abs", [x])])])])]),
        t("Relu", [t("Neg", [x])]),
      ]);
      const w = pw ? t("Add", [one, t("Mul", [t("Sub", [pw, one]), y])]) : null;
      const first = t("Mul", [t("Sub", [one, y]), x]);
      e.node("Add", [first, w ? t("Mul", [w, sp]) : sp], outs);
    },
    vjp: ([g], { inputs: [x, y, pw] }) => {
      const one = scalarLike(x, 1);
      const w = pw ? add(one, mul(sub(pw, one), y)) : one;
      const d = sub(sub(one, y), mul(w, sub(one, sigmoid(x))));
      return [mul(g, d), null, null];
    },
  },
  // Mean softmax cross-entropy of logits [N, C] against int64 classes [N]; second output log_probs.
  SoftmaxCrossEntropy: {
    infer: (ins) => {
      const [x, labels] = ins;
      if (x.rank !== 2 || labels.rank !== 1 || !sameDim(x.shape[0], labels.shape[0])) {
        fail("SoftmaxCrossEntropy", "expects logits [N, C] and labels [N]", ins);
      }
      if (labels.dtype !== "int64") fail("SoftmaxCrossEntropy", "labels must be int64", ins);
      return [
        { dtype: x.dtype, shape: [] },
        { dtype: x.dtype, shape: x.shape },
      ];
    },
    emit: (e, ins, outs, n) => {
      const [x, labels] = ins;
      const c = n.inputs[0].shape[1] as number;
      const dt = n.inputs[0].dtype;
      const onehot = oneHotEmit(e, labels, c, dt);
      e.node("LogSoftmax", [x], [outs[1]], { axis: { i: -1 } });
      const picked = e.tmp("picked");
      e.node("Mul", [outs[1], onehot], [picked]);
      const total = e.tmp("total");
      e.node("ReduceSum", [picked, e.constI64([1])], [total], { keepdims: { i: 0 } });
      const mean = e.tmp("mean");
      e.node("ReduceMean", [total, e.constI64([0])], [mean], { keepdims: { i: 0 } });
      e.node("Neg", [mean], [outs[0]]);
    },
    // d loss / d logits = (softmax - onehot) / N
    vjp: ([g], { inputs: [x, labels], outputs: [, logp] }) => {
      const c = x.shape[1] as number;
      const onehot = apply("OneHot", [labels], { depth: c, dtype: x.dtype })[0];
      const n = dimAsScalar(x.graph, x.shape[0], x.dtype);
      return [mul(div(sub(exp(logp), onehot), n), g), null];
    },
  },
  OneHot: {
    infer: ([idx], a) => [{ dtype: a.dtype as DType, shape: [...idx.shape, a.depth as number] }],
    emit: (e, ins, outs, n) => {
      const oh = oneHotEmit(e, ins[0], n.attrs.depth as number, n.attrs.dtype as DType);
      e.node("Identity", [oh], outs);
    },
  },
  Identity: {
    infer: ([x]) => [{ dtype: x.dtype, shape: x.shape }],
    emit: simple("Identity"),
    vjp: ([g]) => [g],
  },
  // x, available only once every `after` tensor exists: a Reshape of x to its own shape, where the
  // shape is concatenated with an empty slice of each after's values (not of its shape, which
  // onnxruntime folds to a constant when it is static). onnxruntime runs nodes when their inputs
  // exist, so a recomputation that reads x through After starts only when the gradient (after)
  // reaches it, and cannot be merged with the forward computation of the same values.
  After: {
    infer: ([x]) => [{ dtype: x.dtype, shape: x.shape }],
    emit: (e, [x, ...after], [out]) => {
      reshapeAfter(e, x, after, { out });
    },
    vjp: ([g], n, needs) => [needs[0] ? g : null, ...n.inputs.slice(1).map(() => null)],
  },
};

/**
 * x reshaped to `shape` (default: its own) into `out`, computed only once every `after` tensor exists: the
 * shape is concatenated with an empty slice of each after's values. Reading values, not shapes,
 * keeps the edge when a shape is static (onnxruntime folds Shape of a static shape to a constant).
 * The ordering device of After, and of the dequantizations tied to a gradient.
 */
function reshapeAfter(
  e: Emitter,
  x: string,
  after: string[],
  { shape, out = e.tmp("after") }: { shape?: number[]; out?: string } = {},
): string {
  const empties = after.map((a) => {
    const flat = e.tmp("flat");
    e.node("Reshape", [a, e.constI64([-1])], [flat]);
    const none = e.tmp("none");
    e.node("Slice", [flat, e.constI64([0]), e.constI64([0])], [none]);
    const dims = e.tmp("none_i64");
    e.node("Cast", [none], [dims], { to: { i: onnxDtype("int64") } });
    return dims;
  });
  const own = () => {
    const t = e.tmp("shape");
    e.node("Shape", [x], [t]);
    return t;
  };
  const full = e.tmp("shape");
  e.node("Concat", [shape ? e.constI64(shape) : own(), ...empties], [full], { axis: { i: 0 } });
  e.node("Reshape", [x, full], [out]);
  return out;
}

function oneHotEmit(e: Emitter, labels: string, depth: number, dtype: DType): string {
  const idx = e.tmp("idx");
  e.node("Unsqueeze", [labels, e.constI64([-1])], [idx]);
  const eq = e.tmp("eq");
  e.node("Equal", [idx, e.constI64([...Array(depth).keys()])], [eq]);
  const oh = e.tmp("onehot");
  e.node("Cast", [eq], [oh], { to: { i: onnxDtype(dtype) } });
  return oh;
}

export function onnxDtype(d: DType): number {
  const codes: Record<DType, number> = {
    float32: 1,
    uint8: 2,
    int32: 6,
    int64: 7,
    bool: 9,
    float16: 10,
    float64: 11,
  };
  return codes[d];
}

// ---- dropout masks in ONNX ------------------------------------------------------------------

const UINT64 = 13;

function castTo(e: Emitter, x: string, dtype: DType | number): string {
  const out = e.tmp("cast");
  e.node("Cast", [x], [out], { to: { i: typeof dtype === "number" ? dtype : onnxDtype(dtype) } });
  return out;
}

function shapeOf(e: Emitter, x: string): string {
  const out = e.tmp("shape");
  e.node("Shape", [x], [out]);
  return out;
}

/** Emits one binary node and returns its output. */
function bin(e: Emitter, op: string, a: string, b: string): string {
  const out = e.tmp(op.toLowerCase());
  e.node(op, [a, b], [out]);
  return out;
}

/**
 * The flat bool keep-mask of `x` (see dropoutKeeps): squares32 over uint64 with Mul, Add and Div
 * only (a 32-bit rotation is x / 2³² + x · 2³², the two halves never overlap), which the CPU and
 * CUDA providers both implement.
 */
function emitKeepMask(e: Emitter, x: string, key: string, stream: number, ratio: number, out: string): void {
  const size = e.tmp("size");
  e.node("Size", [x], [size]);
  const idx = e.tmp("idx");
  e.node("Range", [e.constScalar(0, "int64"), size, e.constScalar(1, "int64")], [idx]);
  const ctr = castTo(e, bin(e, "Add", idx, e.constScalar(stream * 2 ** 40, "int64")), UINT64);
  const k = castTo(e, key, UINT64);
  const shift = castTo(e, e.constScalar(2 ** 32, "int64"), UINT64);
  const rot = (v: string) => bin(e, "Add", bin(e, "Div", v, shift), bin(e, "Mul", v, shift));
  const y = bin(e, "Mul", ctr, k);
  const z = bin(e, "Add", y, k);
  let v = y;
  for (const add of [y, z, y]) v = rot(bin(e, "Add", bin(e, "Mul", v, v), add));
  const r = castTo(e, bin(e, "Div", bin(e, "Add", bin(e, "Mul", v, v), z), shift), "int64");
  const drop = bin(e, "Less", r, e.constScalar(Math.round(ratio * 2 ** 32), "int64"));
  e.node("Not", [drop], [out]);
}

// ---- building nodes ------------------------------------------------------------------------

/** Adds a node for `op` and returns its outputs. */
export function apply(op: string, inputs: Tensor[], attrs: Record<string, unknown> = {}): Tensor[] {
  const def = OPS[op];
  if (!def) throw new Error(`unknown op ${op}`);
  if (inputs.length === 0) throw new Error(`op ${op} needs inputs`);
  const g = inputs[0].graph;
  const types = def.infer(inputs, attrs);
  return g.addNode(op, inputs, attrs, types).outputs;
}

const one = (op: string, inputs: Tensor[], attrs?: Record<string, unknown>): Tensor =>
  apply(op, inputs, attrs)[0];

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => sameDim(d, b[i]));
}

// ---- constants and runtime shapes -----------------------------------------------------------

/** A scalar constant of the given dtype (deduplicated per graph). */
export function scalar(g: Graph, value: number, dtype: DType = "float32"): Tensor {
  const key = `scalar:${dtype}:${value}`;
  let t = g.cache.get(key);
  if (!t) {
    const name = `const_${dtype}_${String(value).replace(/[^0-9a-z]/gi, "_")}`;
    t = g.initializer(name, dtype, [], toTypedArray(dtype, [value]));
    g.cache.set(key, t);
  }
  return t;
}

/** A scalar with the dtype of `like`. */
export function scalarLike(like: Tensor, value: number): Tensor {
  return scalar(like.graph, value, like.dtype);
}

/** A constant tensor from values (float32 unless said otherwise). */
export function constant(g: Graph, values: number[], shape: number[], dtype: DType = "float32"): Tensor {
  return g.initializer("const", dtype, shape, toTypedArray(dtype, values));
}

/** The runtime value of a dim as an int64 tensor [1] (read from the graph input that introduced it). */
export function dimValue(g: Graph, d: Dim): Tensor {
  const key = `dim:${d}`;
  const cached = g.cache.get(key);
  if (cached) return cached;
  let t: Tensor;
  if (typeof d === "number") {
    t = constant(g, [d], [1], "int64");
  } else if (d.includes("*")) {
    const parts = d.split("*");
    t = parts.map((p) => dimValue(g, /^\d+$/.test(p) ? Number(p) : p)).reduce((a, b) => mul(a, b));
  } else if (d.includes("-")) {
    const [base, off] = d.split("-");
    t = sub(dimValue(g, base), constant(g, [Number(off)], [1], "int64"));
  } else {
    const src = g.dimSources.get(d);
    if (!src)
      throw new ShapeError(`no graph input has the symbolic dim "${d}", so its runtime value is unknown`);
    t = slice(one("Shape", [src.tensor]), [src.axis], [src.axis + 1], [0]);
  }
  g.cache.set(key, t);
  return t;
}

/** A dim as a float scalar of the given dtype (for means). */
function dimAsScalar(g: Graph, d: Dim, dtype: DType): Tensor {
  if (typeof d === "number") return scalar(g, d, dtype);
  return reshape(cast(dimValue(g, d), dtype), []);
}

/** The runtime shape of a static/symbolic shape, as an int64 tensor [rank]. */
export function shapeTensor(g: Graph, shape: Shape): Tensor {
  if (shape.every((d) => typeof d === "number"))
    return constant(g, shape as number[], [shape.length], "int64");
  if (shape.length === 1) return dimValue(g, shape[0]);
  return concat(
    shape.map((d) => dimValue(g, d)),
    0,
  );
}

// ---- public op functions --------------------------------------------------------------------

export const add = (a: Tensor, b: Tensor): Tensor => one("Add", [a, b]);
export const sub = (a: Tensor, b: Tensor): Tensor => one("Sub", [a, b]);
export const mul = (a: Tensor, b: Tensor): Tensor => one("Mul", [a, b]);
export const div = (a: Tensor, b: Tensor): Tensor => one("Div", [a, b]);
export const pow = (x: Tensor, p: number): Tensor => one("Pow", [x], { p });
export const powTensor = (base: Tensor, exponent: Tensor): Tensor => one("PowTensor", [base, exponent]);
export const neg = (x: Tensor): Tensor => one("Neg", [x]);
export const abs = (x: Tensor): Tensor => one("Abs", [x]);
export const sign = (x: Tensor): Tensor => one("Sign", [x]);
export const sqrt = (x: Tensor): Tensor => one("Sqrt", [x]);
export const reciprocal = (x: Tensor): Tensor => one("Reciprocal", [x]);
export const exp = (x: Tensor): Tensor => one("Exp", [x]);
export const log = (x: Tensor): Tensor => one("Log", [x]);
export const tanh = (x: Tensor): Tensor => one("Tanh", [x]);
export const erf = (x: Tensor): Tensor => one("Erf", [x]);
export const sigmoid = (x: Tensor): Tensor => one("Sigmoid", [x]);
export const relu = (x: Tensor): Tensor => one("Relu", [x]);
export const identity = (x: Tensor): Tensor => one("Identity", [x]);
/** x, computed only once every `after` tensor is (ordering edges for onnxruntime; see the After op). */
export const afterTensor = (x: Tensor, ...after: Tensor[]): Tensor => one("After", [x, ...after]);
/** GELU: "none" = exact erf form (BERT, ModernBERT), "tanh" = the tanh approximation. */
export const gelu = (x: Tensor, approximate: "none" | "tanh" = "none"): Tensor =>
  one("Gelu", [x], { approximate });
/** SiLU (swish): x * sigmoid(x). */
export const silu = (x: Tensor): Tensor => mul(x, sigmoid(x));
/** x * c for a constant c. */
export const scale = (x: Tensor, c: number): Tensor => (c === 1 ? x : mul(x, scalarLike(x, c)));
/** c - x for a constant c. */
export const rsub = (c: number, x: Tensor): Tensor => sub(scalarLike(x, c), x);

export const equal = (a: Tensor, b: Tensor): Tensor => one("Equal", [a, b]);
export const less = (a: Tensor, b: Tensor): Tensor => one("Less", [a, b]);
export const greater = (a: Tensor, b: Tensor): Tensor => one("Greater", [a, b]);
export const not = (a: Tensor): Tensor => one("Not", [a]);
export const and = (a: Tensor, b: Tensor): Tensor => one("And", [a, b]);
export const where = (c: Tensor, a: Tensor, b: Tensor): Tensor => one("Where", [c, a, b]);
export const cast = (x: Tensor, to: DType): Tensor => (x.dtype === to ? x : one("Cast", [x], { to }));

export interface MatMulAttrs {
  transA: boolean;
  transB: boolean;
  alpha: number;
}
/** a @ b over the last two axes (batch axes broadcast), optionally transposing either operand and scaling. */
export function matmul(a: Tensor, b: Tensor, opts: Partial<MatMulAttrs> = {}): Tensor {
  return one("MatMul", [a, b], { transA: !!opts.transA, transB: !!opts.transB, alpha: opts.alpha ?? 1 });
}

/** x · Wᵀ for a quantized W [n, k] given as codes (uint8) and scales (float32); see QMatMul. */
export function quantMatmul(x: Tensor, codes: Tensor, scales: Tensor, attrs: QuantAttrs): Tensor {
  return one("QMatMul", [x, codes, scales], { ...attrs });
}

/** ONNX's int8 element type (the graph's DType has no int8: it only lives inside QGemm). */
const ONNX_INT8 = 3;

/** int8 [n, k] from uint8 codes q + 128. */
function uint8ToInt8(e: Emitter, codes: string): string {
  const c = e.tmp("codes_i32");
  e.node("Cast", [codes], [c], { to: { i: onnxDtype("int32") } });
  const s = e.tmp("codes_signed");
  e.node("Sub", [c, e.constScalar(128, "int32")], [s]);
  const q = e.tmp("q8");
  e.node("Cast", [s], [q], { to: { i: ONNX_INT8 } });
  return q;
}

/**
 * int8 [n, k] from MatMulNBits int4 (codes [n, blocks, bs/2], low nibble first, zero point 8;
 * block scales [n · blocks]): q = round((nibble − 8) · blockScale / scale[n]).
 */
function int4ToInt8(e: Emitter, codes: string, blockScales: string, scales: string, a: QGemmAttrs): string {
  const { n, k, blockSize: bs } = a;
  const blocks = Math.ceil(k / bs);
  const lo = e.tmp("lo");
  e.node("BitwiseAnd", [codes, e.constScalar(15, "uint8")], [lo]);
  const hi = e.tmp("hi");
  e.node("BitShift", [codes, e.constScalar(4, "uint8")], [hi], { direction: { s: "RIGHT" } });
  const pair = [lo, hi].map((t) => {
    const u = e.tmp("nibble");
    e.node("Unsqueeze", [t, e.constI64([-1])], [u]);
    return u;
  });
  const both = e.tmp("nibbles");
  e.node("Concat", pair, [both], { axis: { i: -1 } });
  const flat = e.tmp("nibbles_flat");
  e.node("Reshape", [both, e.constI64([n, blocks, bs])], [flat]);
  const f = e.tmp("nibbles_f");
  e.node("Cast", [flat], [f], { to: { i: onnxDtype("float32") } });
  const centred = e.tmp("centred");
  e.node("Sub", [f, e.constScalar(8, "float32")], [centred]);
  const bsc = e.tmp("block_scales");
  e.node("Reshape", [blockScales, e.constI64([n, blocks, 1])], [bsc]);
  const w = e.tmp("w");
  e.node("Mul", [centred, bsc], [w]);
  const sc = e.tmp("row_scales");
  e.node("Reshape", [scales, e.constI64([n, 1, 1])], [sc]);
  const ratio = e.tmp("ratio");
  e.node("Div", [w, sc], [ratio]);
  const r = e.tmp("rounded");
  e.node("Round", [ratio], [r]);
  const rows = e.tmp("rows");
  e.node("Reshape", [r, e.constI64([n, blocks * bs])], [rows]);
  let cut = rows;
  if (blocks * bs !== k) {
    cut = e.tmp("rows_cut");
    e.node("Slice", [rows, e.constI64([0]), e.constI64([k]), e.constI64([1])], [cut]);
  }
  const q = e.tmp("q8");
  e.node("Cast", [cut], [q], { to: { i: ONNX_INT8 } });
  return q;
}

/**
 * x · Wᵀ on onnxruntime's int8 QGEMM (prediction only, see QGemm): `codes` uint8 [n, k] (int8
 * source) or MatMulNBits int4 codes with `blockScales`; `scales` [n] per output channel.
 */
export function qgemmMatmul(
  x: Tensor,
  codes: Tensor,
  scales: Tensor,
  attrs: QGemmAttrs,
  blockScales?: Tensor,
): Tensor {
  const ins = attrs.source === "int4" && blockScales ? [x, codes, blockScales, scales] : [x, codes, scales];
  return one("QGemm", ins, { ...attrs });
}

/** Byte → value(s) table of a scheme: nf4 [256, 2] levels (high nibble first), int4 [256, 2] code-8 (low nibble first), int8 [256] code-128. */
/**
 * W [n, k] float32 from int8 codes (uint8 q + 128, rows padded to whole blocks) and block scales,
 * in one DequantizeLinear (opset 21 blocked form, zero point 128); `after` orders it as in Dequant.
 */
function int8DequantizeLinear(
  e: Emitter,
  codes: string,
  scales: string,
  after: string,
  a: QuantAttrs,
): string {
  const { n, k, blockSize: bs } = a;
  const blocks = Math.ceil(k / bs);
  const q = reshapeAfter(e, codes, [after], { shape: [n, blocks * bs] });
  const sc = e.tmp("scales");
  e.node("Reshape", [scales, e.constI64([n, blocks])], [sc]);
  const zero = e.tmp("zero_point");
  e.node("Expand", [e.constScalar(128, "uint8"), e.constI64([n, blocks])], [zero]);
  const w = e.tmp("w");
  e.node("DequantizeLinear", [q, sc, zero], [w], { axis: { i: 1 }, block_size: { i: bs } });
  if (blocks * bs === k) return w;
  const cut = e.tmp("w");
  e.node("Slice", [w, e.constI64([0]), e.constI64([k]), e.constI64([1])], [cut]);
  return cut;
}

/** The values of each code byte of an NF4 or int4 weight (two per byte; int8 uses DequantizeLinear). */
function dequantTable(g: Graph, scheme: "nf4" | "int4"): Tensor {
  const key = `dequant-table:${scheme}`;
  let t = g.cache.get(key);
  if (!t) {
    const values = Array.from({ length: 256 }, (_, b) =>
      scheme === "nf4" ? [NF4_TABLE[b >> 4], NF4_TABLE[b & 15]] : [(b & 15) - 8, (b >> 4) - 8],
    ).flat();
    t = g.initializer(`dequant_table_${scheme}`, "float32", [256, 2], Float32Array.from(values));
    g.cache.set(key, t);
  }
  return t;
}

/** The float32 W [n, k] of a quantized weight, computed once `after` exists (see QMatMul). */
export function dequantize(codes: Tensor, scales: Tensor, attrs: QuantAttrs, after: Tensor): Tensor {
  const table = attrs.scheme === "int8" ? [] : [dequantTable(codes.graph, attrs.scheme)];
  return one("Dequant", [codes, scales, ...table, after], { ...attrs });
}

export const softmax = (x: Tensor, axis = -1): Tensor => one("Softmax", [x], { axis });

/** LayerNorm over the last axis with weight and optional bias. */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor | null, eps: number): Tensor {
  return one("LayerNorm", bias ? [x, weight, bias] : [x, weight], { eps });
}

/** RMSNorm over the last axis: w * x / sqrt(mean(x^2) + eps) (Llama). */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const ms = reduceMean(mul(x, x), [-1], true);
  return mul(mul(x, reciprocal(sqrt(add(ms, scalarLike(x, eps))))), weight);
}

export const reduceSum = (x: Tensor, axes: number[], keepdims = false): Tensor =>
  one("ReduceSum", [x], { axes, keepdims });
export const reduceMean = (x: Tensor, axes: number[], keepdims = false): Tensor =>
  one("ReduceMean", [x], { axes, keepdims });
export const reduceMax = (x: Tensor, axes: number[], keepdims = false): Tensor =>
  one("ReduceMax", [x], { axes, keepdims });
/** Sum over all elements (a scalar). */
export const sumAll = (x: Tensor): Tensor => reduceSum(x, [...x.shape.keys()], false);
export const meanAll = (x: Tensor): Tensor => reduceMean(x, [...x.shape.keys()], false);

/**
 * Reshape to `shape`; dims may be symbolic names known to the graph ("batch", "seq", "batch*seq")
 * and at most one -1 whose size is inferred.
 */
export function reshape(x: Tensor, shape: Dim[]): Tensor {
  const g = x.graph;
  const inferred = shape.indexOf(-1);
  let target = [...shape];
  if (inferred >= 0) {
    const known = dimProduct(shape.filter((_, i) => i !== inferred));
    const q = dimQuotient(dimProduct(x.shape), known);
    if (q === undefined) {
      throw new ShapeError(
        `Reshape: cannot infer -1 in [${shape}] from ${shapeStr(x.shape)} (inputs: ${x.name})`,
      );
    }
    target[inferred] = q;
  }
  if (sameShape(target, x.shape)) return x;
  target = target.map((d) => (typeof d === "string" ? dimProduct([d]) : d));
  // A static spec when possible: numbers, 0 = "same as input at this axis", and one -1.
  const spec: number[] = [];
  let free = 0;
  target.forEach((d, i) => {
    if (typeof d === "number") spec.push(d);
    else if (i < x.rank && sameDim(x.shape[i], d)) spec.push(0);
    else {
      spec.push(-1);
      free++;
    }
  });
  if (free <= 1) return one("Reshape", [x], { shape: target, spec });
  return one("Reshape", [x, shapeTensor(g, target)], { shape: target });
}

export const transpose = (x: Tensor, perm: number[]): Tensor => one("Transpose", [x], { perm });
export const concat = (xs: Tensor[], axis: number): Tensor =>
  xs.length === 1 ? xs[0] : one("Concat", xs, { axis });
export const split = (x: Tensor, axis: number, sizes: number[]): Tensor[] =>
  apply("Split", [x], { axis, sizes });
/** x[starts:ends] along `axes` (static, non-negative; use TO_END for "to the end"). */
export const slice = (x: Tensor, starts: number[], ends: number[], axes: number[]): Tensor =>
  one("Slice", [x], { starts, ends, axes });
export const unsqueeze = (x: Tensor, axes: number[]): Tensor => one("Unsqueeze", [x], { axes });
export const squeeze = (x: Tensor, axes: number[]): Tensor => one("Squeeze", [x], { axes });
/** Broadcast x to `shape` (numpy rules). */
export function expand(x: Tensor, shape: Shape): Tensor {
  if (sameShape(x.shape, shape)) return x;
  return one("Expand", [x, shapeTensor(x.graph, shape)], { shape });
}
/** Rows of `table` (axis 0) at `indices`: output shape = indices.shape + table.shape[1:]. */
export const gather = (table: Tensor, indices: Tensor): Tensor => one("Gather", [table, indices]);
/** 0, 1, ..., n-1 as int64 where n may be symbolic. */
export function arange(g: Graph, n: Dim): Tensor {
  const start = scalar(g, 0, "int64");
  const limit = typeof n === "number" ? scalar(g, n, "int64") : reshape(dimValue(g, n), []);
  return one("Range", [start, limit, scalar(g, 1, "int64")], { length: n });
}
export const cumsum = (x: Tensor, axis: number): Tensor => one("CumSum", [x], { axis });
/** zeros with the runtime shape of `like`. */
export function zerosLike(like: Tensor): Tensor {
  return one("ConstantOfShape", [one("Shape", [like])], { dtype: like.dtype, value: 0, shape: like.shape });
}
function scatterAddRows(updates: Tensor, idx: Tensor, like: Tensor): Tensor {
  return one("ScatterAddRows", [updates, idx, like]);
}

/** Name of the graph input that seeds every dropout mask of a graph (int64 scalar). */
export const DROPOUT_KEY = "dropout_key";

/**
 * Training-mode dropout (identity when ratio is 0). Its mask depends only on the graph input
 * `dropout_key` (see dropoutKey) and on which dropout of the graph this is, so the same key gives
 * the same masks in any session.
 */
export function dropout(x: Tensor, ratio: number): Tensor {
  if (ratio <= 0) return x;
  if (!(ratio < 1)) throw new Error(`dropout ratio must be below 1, got ${ratio}`);
  const g = x.graph;
  let key = g.cache.get(`input:${DROPOUT_KEY}`);
  if (!key) {
    key = g.input(DROPOUT_KEY, "int64", []);
    g.cache.set(`input:${DROPOUT_KEY}`, key);
  }
  const stream = g.nodes.filter((n) => n.op === "DropoutMask").length;
  // y = x · mask / (1 − ratio): Mul's VJP gives the dropout gradient g · mask / (1 − ratio).
  const mask = one("DropoutMask", [x, key], { ratio, stream });
  return mul(mul(x, cast(mask, x.dtype)), scalarLike(x, 1 / (1 - ratio)));
}

/**
 * The `dropout_key` value for a list of non-negative integers (e.g. seed, step, micro-batch):
 * splitmix64 of each part folded in, forced odd as the squares generator wants.
 */
export function dropoutKey(...parts: number[]): bigint {
  const M = (1n << 64n) - 1n;
  let h = 0x9e3779b97f4a7c15n;
  for (const p of parts) {
    if (!Number.isSafeInteger(p)) throw new Error(`dropoutKey: ${p} is not a safe integer`);
    let z = (h + BigInt.asUintN(64, BigInt(p)) + 0x9e3779b97f4a7c15n) & M;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    h = z ^ (z >> 31n);
  }
  return BigInt.asIntN(64, h | 1n);
}

/**
 * Widynski's "squares" counter-based generator (arXiv:2004.06278), 32-bit output: four rounds of
 * x = x·x + (y | z), then a 32-bit rotation. Reference for the in-graph version (emitKeepMask).
 */
export function squares32(ctr: bigint, key: bigint): bigint {
  const M = (1n << 64n) - 1n;
  const rot = (v: bigint) => ((v >> 32n) | (v << 32n)) & M;
  const y = (ctr * key) & M;
  const z = (y + key) & M;
  let x = y;
  x = rot((x * x + y) & M);
  x = rot((x * x + z) & M);
  x = rot((x * x + y) & M);
  return ((x * x + z) & M) >> 32n;
}

/** Element i of dropout number `stream` of a graph is kept when squares32(i + stream·2⁴⁰, key) ≥ p·2³². */
export function dropoutKeeps(key: bigint, stream: number, index: number, ratio: number): boolean {
  const ctr = BigInt(index) + (BigInt(stream) << 40n);
  return squares32(BigInt.asUintN(64, ctr), BigInt.asUintN(64, key)) >= BigInt(Math.round(ratio * 2 ** 32));
}

/** Mean binary cross-entropy on logits with optional per-label pos_weight (broadcast over the last axis). */
export function bceWithLogits(logits: Tensor, targets: Tensor, posWeight?: Tensor): Tensor {
  return meanAll(one("BCEWithLogits", posWeight ? [logits, targets, posWeight] : [logits, targets]));
}

/** Mean softmax cross-entropy of logits [N, C] against int64 classes [N]. */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor): Tensor {
  return apply("SoftmaxCrossEntropy", [logits, labels])[0];
}

// ---- gradient helpers -----------------------------------------------------------------------

/** Sums a broadcast gradient back down to `shape` (the inverse of numpy broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead) axes.push(i);
    else if (shape[i - lead] === 1 && g.shape[i] !== 1) axes.push(i);
  }
  const r = axes.length ? reduceSum(g, axes, true) : g;
  return reshape(r, shape);
}

function keepDims(g: Tensor, x: Tensor, attrs: Record<string, unknown>): Tensor {
  if (attrs.keepdims) return g;
  const axes = (attrs.axes as number[]).map((a) => (a < 0 ? a + x.rank : a));
  return reshape(
    g,
    x.shape.map((d, i) => (axes.includes(i) ? 1 : d)),
  );
}

function expandTo(g: Tensor, x: Tensor): Tensor {
  return expand(g, x.shape);
}

function geluDerivative(x: Tensor, approximate: string): Tensor {
  if (approximate === "tanh") {
    // y = 0.5 x (1 + tanh(u)), u = c (x + 0.044715 x^3)
    // dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2)
    const c = Math.sqrt(2 / Math.PI);
    const x2 = mul(x, x);
    const u = scale(add(x, scale(mul(x2, x), 0.044715)), c);
    const t = tanh(u);
    const du = scale(add(scalarLike(x, 1), scale(x2, 3 * 0.044715)), c);
    return add(scale(add(scalarLike(x, 1), t), 0.5), mul(scale(mul(x, rsub(1, mul(t, t))), 0.5), du));
  }
  // y = x Phi(x): dy/dx = Phi(x) + x phi(x)
  const cdf = scale(add(scalarLike(x, 1), erf(scale(x, Math.SQRT1_2))), 0.5);
  const pdf = scale(exp(scale(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
  return add(cdf, mul(x, pdf));
}

function sliceGrad(g: Tensor, x: Tensor, a: { starts: number[]; ends: number[]; axes: number[] }): Tensor {
  const graph = x.graph;
  const begins: Tensor[] = [];
  const ends: Tensor[] = [];
  const zero = constant(graph, [0], [1], "int64");
  for (let ax = 0; ax < x.rank; ax++) {
    const i = a.axes.map((q) => (q < 0 ? q + x.rank : q)).indexOf(ax);
    if (i < 0) {
      begins.push(zero);
      ends.push(zero);
      continue;
    }
    const d = x.shape[ax];
    begins.push(constant(graph, [a.starts[i]], [1], "int64"));
    if (typeof d === "number") ends.push(constant(graph, [d - Math.min(a.ends[i], d)], [1], "int64"));
    else if (a.ends[i] >= TO_END) ends.push(zero);
    else ends.push(sub(dimValue(graph, d), constant(graph, [a.ends[i]], [1], "int64")));
  }
  return one("Pad", [g, concat([...begins, ...ends], 0)], { shape: x.shape });
}

/**
 * VJP of Y = alpha * op(A) @ op(B). When one operand is a rank-2 weight shared across a batch
 * (x [B,T,K] @ W [K,N]), the batch is folded into rows so dW is a single GEMM.
 */
function matmulVjp(g: Tensor, a: Tensor, b: Tensor, at: MatMulAttrs, needs: boolean[]): Grad[] {
  const { transA, transB, alpha } = at;
  let da: Grad = null;
  let db: Grad = null;
  if (needs[0]) {
    // dA = alpha * g @ op(B)^T (transposed back if A was used transposed)
    da = transA
      ? matmul(b, g, { transA: transB, transB: true, alpha })
      : matmul(g, b, { transB: !transB, alpha });
    da = sumTo(da, a.shape);
  }
  if (needs[1]) {
    if (b.rank === 2 && a.rank > 2 && !transA) {
      // Fold batch axes: A2 [R,K], g2 [R,N] -> dB = A2^T g2 (or its transpose).
      const a2 = reshape(a, [-1, a.shape[a.rank - 1]]);
      const g2 = reshape(g, [-1, g.shape[g.rank - 1]]);
      db = transB ? matmul(g2, a2, { transA: true, alpha }) : matmul(a2, g2, { transA: true, alpha });
    } else {
      db = transB
        ? matmul(g, a, { transA: true, transB: transA, alpha })
        : matmul(a, g, { transA: !transA, alpha });
      db = sumTo(db, b.shape);
    }
  }
  return [da, db];
}
