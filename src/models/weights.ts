// Where model builders get their frozen weights from: a synchronous name → tensor lookup, so that
// building a graph stays a plain function call. Names are Hugging Face checkpoint keys as they
// appear in the *ForSequenceClassification model ("bert.encoder.layer.0…", "model.layers.0…");
// `withPrefixAlias` also finds keys saved without the base-model prefix (a bare BertModel or
// ModernBertModel checkpoint) so every kind of checkpoint loads.

import { type F32Tensor, openCheckpoint } from "../io/safetensors.js";
import { dequantizeWeight, type QuantizedTensor } from "../quant/weights.js";

/** Read access to named float32 tensors. */
export interface WeightSource {
  /** The tensor stored under `key`, or undefined when there is none. */
  get(key: string): F32Tensor | undefined;
  /** The tensor stored quantized under `key` (a quantized base), or undefined. */
  getQuantized?(key: string): QuantizedTensor | undefined;
  /** Where the tensors come from (a folder or file), for error messages. */
  readonly origin: string;
}

/**
 * A WeightSource over an in-memory map, optionally with quantized tensors (a quantized base): `get`
 * returns those dequantized (a fresh copy each time), `getQuantized` as stored.
 */
export class WeightMap implements WeightSource {
  constructor(
    readonly tensors: Map<string, F32Tensor>,
    readonly origin: string,
    readonly quantized: Map<string, QuantizedTensor> = new Map(),
  ) {}

  get(key: string): F32Tensor | undefined {
    const t = this.tensors.get(key);
    if (t) return t;
    const q = this.quantized.get(key);
    return q ? { data: dequantizeWeight(q), shape: [q.attrs.n, q.attrs.k] } : undefined;
  }

  getQuantized(key: string): QuantizedTensor | undefined {
    return this.quantized.get(key);
  }

  keys(): string[] {
    return [...this.tensors.keys(), ...this.quantized.keys()];
  }
}

/** A source that also finds `<prefix>rest` under `rest` (checkpoints saved from the bare base model). */
export function withPrefixAlias(src: WeightSource, prefix: string): WeightSource {
  const lookup = <T>(get: (k: string) => T | undefined, key: string): T | undefined => {
    const direct = get(key);
    if (direct || !key.startsWith(prefix)) return direct;
    return get(key.slice(prefix.length));
  };
  return {
    origin: src.origin,
    get: (key) => lookup((k) => src.get(k), key),
    getQuantized: (key) => lookup((k) => src.getQuantized?.(k), key),
  };
}

/** Tries several sources in order (e.g. an adapter's head first, then the checkpoint's). */
export function firstOf(...sources: (WeightSource | undefined)[]): WeightSource {
  const list = sources.filter((s): s is WeightSource => s !== undefined);
  return {
    origin: list.map((s) => s.origin).join(" + "),
    get(key: string): F32Tensor | undefined {
      for (const s of list) {
        const t = s.get(key);
        if (t) return t;
      }
      return undefined;
    },
    // A float tensor of an earlier source (a head file) hides a quantized one of a later source.
    getQuantized(key: string): QuantizedTensor | undefined {
      for (const s of list) {
        const q = s.getQuantized?.(key);
        if (q) return q;
        if (s.get(key)) return undefined;
      }
      return undefined;
    },
  };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The tensor `key` with the expected shape; throws naming the key, the shapes and the source. */
export function requireWeight(src: WeightSource, key: string, shape: number[]): Float32Array {
  const t = src.get(key);
  if (!t) throw new Error(`${src.origin}: the checkpoint has no tensor "${key}" (expected shape [${shape}])`);
  if (!sameShape(t.shape, shape)) {
    throw new Error(
      `${src.origin}: tensor "${key}" has shape [${t.shape}] but the config implies [${shape}]`,
    );
  }
  return t.data;
}

/** Like requireWeight, but undefined when the tensor is absent (optional biases, norms). */
export function optionalWeight(src: WeightSource, key: string, shape: number[]): Float32Array | undefined {
  return src.get(key) ? requireWeight(src, key, shape) : undefined;
}

/** Whether a layer's tensor must be in the checkpoint, may be (a bias some checkpoints drop), or is not used. */
export type Presence = "required" | "optional" | "none";

/** The tensor `key` as `presence` asks: requireWeight, optionalWeight, or undefined for "none". */
export function weightFor(
  src: WeightSource,
  key: string,
  shape: number[],
  presence: Presence,
): Float32Array | undefined {
  if (presence === "none") return undefined;
  return presence === "required" ? requireWeight(src, key, shape) : optionalWeight(src, key, shape);
}

export interface ReadWeightsOptions {
  /** Keys not to read (e.g. `lm_head.weight`: a classifier never uses it). */
  skip?: (key: string) => boolean;
  /** Called after each tensor with the tensors read so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Reads every tensor of a checkpoint (folder with model.safetensors or a sharded index, or one
 * .safetensors file) as float32; F16/BF16 are converted. Tensors are read one at a time, so the
 * memory needed is the float32 model once.
 */
export async function readWeights(dirOrFile: string, opts: ReadWeightsOptions = {}): Promise<WeightMap> {
  const src = await openCheckpoint(dirOrFile);
  try {
    const keys = src.keys().filter((k) => !opts.skip?.(k));
    const map = new Map<string, F32Tensor>();
    for (const k of keys) {
      map.set(k, await src.getF32(k));
      opts.onProgress?.(map.size, keys.length);
    }
    return new WeightMap(map, dirOrFile);
  } finally {
    await src.close();
  }
}
