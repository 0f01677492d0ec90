// What an op's ONNX emitter may do: add ONNX nodes and small constant initializers.
// Implemented by src/engine/onnx.ts; kept separate so ops.ts does not depend on protobuf.
import type { DType } from "./graph.js";

export type AttrValue =
  | { i: number }
  | { f: number }
  | { ints: number[] }
  | { floats: number[] }
  | { s: string }
  | { t: { dtype: DType; dims: number[]; values: number[] } };

export interface Emitter {
  /** Adds one ONNX node. */
  node(
    opType: string,
    inputs: string[],
    outputs: string[],
    attrs?: Record<string, AttrValue>,
    domain?: string,
  ): void;
  /** A fresh value name. */
  tmp(hint: string): string;
  /** An int64 constant initializer (1-D unless `dims` is given), deduplicated by value. */
  constI64(values: number[], dims?: number[]): string;
  /** A scalar constant initializer of the given dtype, deduplicated by value. */
  constScalar(value: number, dtype: DType): string;
}
