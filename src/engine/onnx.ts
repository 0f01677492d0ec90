// Serialises a Graph to an ONNX ModelProto with protobufjs. The message schema below declares the
// subset of onnx.proto that toxlora writes (field numbers as in onnx/onnx.proto, IR version 10).
// Weights larger than 2 GB in total go to an external data file beside the model.

import { closeSync, openSync, writeSync } from "node:fs";
import { basename } from "node:path";
import protobuf from "protobufjs";
import type { AttrValue, Emitter } from "./emitter.js";
import { type DType, type Graph, type Node, type Tensor, type TypedArray, toTypedArray } from "./graph.js";
import { OPS, onnxDtype } from "./ops.js";

const OPSET = 21;
const IR_VERSION = 10;

const schema = {
  nested: {
    onnx: {
      nested: {
        StringStringEntryProto: {
          fields: { key: { type: "string", id: 1 }, value: { type: "string", id: 2 } },
        },
        OperatorSetIdProto: {
          fields: { domain: { type: "string", id: 1 }, version: { type: "int64", id: 2 } },
        },
        TensorProto: {
          fields: {
            dims: { rule: "repeated", type: "int64", id: 1 },
            dataType: { type: "int32", id: 2 },
            floatData: { rule: "repeated", type: "float", id: 4 },
            int64Data: { rule: "repeated", type: "int64", id: 7 },
            name: { type: "string", id: 8 },
            rawData: { type: "bytes", id: 9 },
            doubleData: { rule: "repeated", type: "double", id: 10 },
            externalData: { rule: "repeated", type: "StringStringEntryProto", id: 13 },
            dataLocation: { type: "int32", id: 14 },
          },
        },
        AttributeProto: {
          fields: {
            name: { type: "string", id: 1 },
            f: { type: "float", id: 2 },
            i: { type: "int64", id: 3 },
            s: { type: "bytes", id: 4 },
            t: { type: "TensorProto", id: 5 },
            floats: { rule: "repeated", type: "float", id: 7 },
            ints: { rule: "repeated", type: "int64", id: 8 },
            type: { type: "int32", id: 20 },
          },
        },
        NodeProto: {
          fields: {
            input: { rule: "repeated", type: "string", id: 1 },
            output: { rule: "repeated", type: "string", id: 2 },
            name: { type: "string", id: 3 },
            opType: { type: "string", id: 4 },
            attribute: { rule: "repeated", type: "AttributeProto", id: 5 },
            domain: { type: "string", id: 7 },
          },
        },
        Dimension: { fields: { dimValue: { type: "int64", id: 1 }, dimParam: { type: "string", id: 2 } } },
        TensorShapeProto: { fields: { dim: { rule: "repeated", type: "Dimension", id: 1 } } },
        TypeProtoTensor: {
          fields: { elemType: { type: "int32", id: 1 }, shape: { type: "TensorShapeProto", id: 2 } },
        },
        TypeProto: { fields: { tensorType: { type: "TypeProtoTensor", id: 1 } } },
        ValueInfoProto: { fields: { name: { type: "string", id: 1 }, type: { type: "TypeProto", id: 2 } } },
        GraphProto: {
          fields: {
            node: { rule: "repeated", type: "NodeProto", id: 1 },
            name: { type: "string", id: 2 },
            initializer: { rule: "repeated", type: "TensorProto", id: 5 },
            input: { rule: "repeated", type: "ValueInfoProto", id: 11 },
            output: { rule: "repeated", type: "ValueInfoProto", id: 12 },
          },
        },
        ModelProto: {
          fields: {
            irVersion: { type: "int64", id: 1 },
            producerName: { type: "string", id: 2 },
            producerVersion: { type: "string", id: 3 },
            graph: { type: "GraphProto", id: 7 },
            opsetImport: { rule: "repeated", type: "OperatorSetIdProto", id: 8 },
            metadataProps: { rule: "repeated", type: "StringStringEntryProto", id: 14 },
          },
        },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(schema);
const ModelProto = root.lookupType("onnx.ModelProto");

const ATTR_TYPE = { f: 1, i: 2, s: 3, t: 4, floats: 6, ints: 7 } as const;

interface TensorMsg {
  name: string;
  dims: number[];
  dataType: number;
  rawData?: Uint8Array;
  externalData?: { key: string; value: string }[];
  dataLocation?: number;
}

function bytesOf(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function encodeValues(dtype: DType, values: number[]): Uint8Array {
  return bytesOf(toTypedArray(dtype, values));
}

function valueInfo(name: string, t: Tensor): object {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnxDtype(t.dtype),
        shape: {
          dim: t.shape.map((d) =>
            typeof d === "number" ? { dimValue: d } : /^[A-Za-z_]\w*$/.test(d) ? { dimParam: d } : {},
          ),
        },
      },
    },
  };
}

function attrMsg(name: string, v: AttrValue): object {
  if ("i" in v) return { name, type: ATTR_TYPE.i, i: v.i };
  if ("f" in v) return { name, type: ATTR_TYPE.f, f: v.f };
  if ("ints" in v) return { name, type: ATTR_TYPE.ints, ints: v.ints };
  if ("floats" in v) return { name, type: ATTR_TYPE.floats, floats: v.floats };
  if ("s" in v) return { name, type: ATTR_TYPE.s, s: new TextEncoder().encode(v.s) };
  return {
    name,
    type: ATTR_TYPE.t,
    t: { dims: v.t.dims, dataType: onnxDtype(v.t.dtype), rawData: encodeValues(v.t.dtype, v.t.values) },
  };
}

/** Nodes needed for the graph outputs, in topological (creation) order. */
export function liveNodes(graph: Graph, roots: Tensor[]): Node[] {
  const live = new Set<Node>();
  const stack = roots.map((t) => t.producer).filter((n): n is Node => n !== null);
  for (let n = stack.pop(); n; n = stack.pop()) {
    if (live.has(n)) continue;
    live.add(n);
    for (const i of n.inputs) if (i.producer && !live.has(i.producer)) stack.push(i.producer);
  }
  return graph.nodes.filter((n) => live.has(n));
}

/**
 * An ONNX external data file that several models can share: each distinct array is written once
 * (page-aligned), and every model that uses the same array points at the same bytes, so the
 * training and evaluation graphs of a large model cost one weights file on disk, written once.
 * Arrays start on page boundaries, so onnxruntime maps them (see PAGE) rather than copying them.
 */
/**
 * Alignment of each array in an external data file. onnxruntime maps an external initializer
 * whose offset is a multiple of the page size into memory instead of reading it into its own
 * buffer: sessions sharing the file share its pages, and pages never read (most rows of a large
 * embedding table) never become resident.
 */
const PAGE = 4096;

export class ExternalWeights {
  private readonly fd: number;
  private offset = 0;
  // Weak, so that the store does not keep the JS copy of the weights alive once they are written.
  private readonly placed = new WeakMap<TypedArray, number>();
  /** The file name models refer to (relative to the model file's folder). */
  readonly location: string;

  constructor(readonly path: string) {
    this.fd = openSync(path, "w");
    this.location = basename(path);
  }

  /** Offset of `data` in the file, appending it on first use. */
  place(data: TypedArray): number {
    const known = this.placed.get(data);
    if (known !== undefined) return known;
    const pad = (PAGE - (this.offset % PAGE)) % PAGE;
    if (pad) writeSync(this.fd, new Uint8Array(pad));
    this.offset += pad;
    const at = this.offset;
    const bytes = bytesOf(data);
    for (let off = 0; off < bytes.byteLength; ) off += writeSync(this.fd, bytes, off, bytes.byteLength - off);
    this.offset += bytes.byteLength;
    this.placed.set(data, at);
    return at;
  }

  private closed = false;

  close(): void {
    if (!this.closed) closeSync(this.fd);
    this.closed = true;
  }
}

export interface OnnxOptions {
  /** Write initializers of 1 KB and more to this external data file instead of inside the model. */
  externalData?: ExternalWeights;
  /** Free-form metadata stored in the model. */
  metadata?: Record<string, string>;
  producerVersion?: string;
}

/**
 * Serialises `graph` to ONNX bytes. Inputs are the graph's inputs and params (in that order);
 * outputs are the tensors registered with `graph.output`.
 */
export function toOnnx(graph: Graph, opts: OnnxOptions = {}): Uint8Array {
  const nodes = liveNodes(
    graph,
    graph.outputs.map((o) => o.tensor),
  );
  const onnxNodes: object[] = [];
  const initializers: TensorMsg[] = [];
  const constCache = new Map<string, string>();
  let tmpCounter = 0;

  const emitter: Emitter = {
    node(opType, inputs, outputs, attrs = {}, domain = "") {
      onnxNodes.push({
        opType,
        input: inputs,
        output: outputs,
        name: `${opType}_${onnxNodes.length}`,
        domain,
        attribute: Object.entries(attrs).map(([k, v]) => attrMsg(k, v)),
      });
    },
    tmp(hint) {
      return `_t${tmpCounter++}_${hint}`;
    },
    constI64(values, dims) {
      const key = `i64:${values.join(",")}:${dims ? dims.join(",") : "1d"}`;
      let name = constCache.get(key);
      if (!name) {
        name = `_c${constCache.size}_i64`;
        initializers.push({
          name,
          dims: dims ?? [values.length],
          dataType: 7,
          rawData: encodeValues("int64", values),
        });
        constCache.set(key, name);
      }
      return name;
    },
    constScalar(value, dtype) {
      const key = `${dtype}:${value}`;
      let name = constCache.get(key);
      if (!name) {
        name = `_c${constCache.size}_${dtype}`;
        initializers.push({
          name,
          dims: [],
          dataType: onnxDtype(dtype),
          rawData: encodeValues(dtype, [value]),
        });
        constCache.set(key, name);
      }
      return name;
    },
  };

  const used = new Set<Tensor>();
  for (const n of nodes) {
    for (const t of n.inputs) used.add(t);
    OPS[n.op].emit(
      emitter,
      n.inputs.map((t) => t.name),
      n.outputs.map((t) => t.name),
      n,
    );
  }

  // Graph outputs: give each its requested name with an Identity when the tensor is named otherwise.
  const outputInfos: object[] = [];
  for (const o of graph.outputs) {
    used.add(o.tensor);
    if (o.tensor.name !== o.name) emitter.node("Identity", [o.tensor.name], [o.name]);
    outputInfos.push(valueInfo(o.name, o.tensor));
  }

  const ext = opts.externalData;
  for (const { tensor, data } of graph.initializers) {
    if (!used.has(tensor)) continue;
    const msg: TensorMsg = {
      name: tensor.name,
      dims: tensor.shape as number[],
      dataType: onnxDtype(tensor.dtype),
    };
    if (ext && data.byteLength >= 1024) {
      msg.dataLocation = 1;
      msg.externalData = [
        { key: "location", value: ext.location },
        { key: "offset", value: String(ext.place(data)) },
        { key: "length", value: String(data.byteLength) },
      ];
    } else {
      msg.rawData = bytesOf(data);
    }
    initializers.push(msg);
  }

  const inputs = [...graph.inputs, ...graph.params].filter((t) => used.has(t));
  const model = {
    irVersion: IR_VERSION,
    producerName: "toxlora",
    producerVersion: opts.producerVersion ?? "",
    opsetImport: [
      { domain: "", version: OPSET },
      { domain: "com.microsoft", version: 1 },
    ],
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: "toxlora",
      node: onnxNodes,
      initializer: initializers,
      input: inputs.map((t) => valueInfo(t.name, t)),
      output: outputInfos,
    },
  };
  const err = ModelProto.verify(model);
  if (err) throw new Error(`internal error: invalid ONNX model message: ${err}`);
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

/**
 * Weights beyond this many bytes go to an external data file: a protobuf message cannot exceed
 * 2 GB, and the graph itself needs room too.
 */
export const EXTERNAL_DATA_BYTES = 1.5e9;

/** Total bytes of the initializers (to decide between in-memory and external-data models). */
export function initializerBytes(graph: Graph): number {
  return graph.initializers.reduce((s, i) => s + i.data.byteLength, 0);
}
