// Runs graphs with onnxruntime-node. `Session` is a forward graph; `TrainSession` runs a training
// step graph (forward + backward + optimizer) and keeps parameters and optimizer state as tensors
// between steps: the updated values a step returns are fed to the next one, nothing is re-serialised.

import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import v8 from "node:v8";
import vm from "node:vm";
import * as ort from "onnxruntime-node";
import { type DType, type Graph, type TypedArray, toTypedArray } from "./graph.js";
import { EXTERNAL_DATA_BYTES, ExternalWeights, initializerBytes, toOnnx } from "./onnx.js";
import type { OptimizerGraph } from "./optim.js";

export type Device = "cpu" | "cuda";

export interface SessionOptions {
  device?: Device;
  /** Intra-op threads; default = the machine's cores. */
  threads?: number;
  /** onnxruntime graph optimisation level (default "all"). */
  optimization?: "disabled" | "basic" | "extended" | "all";
  /**
   * Skip weight pre-packing. Pre-packing makes a second, GEMM-friendly copy of every frozen
   * matrix; on very large models that copy does not fit in memory.
   */
  disablePrepacking?: boolean;
  /**
   * onnxruntime's memory pattern (default on): after the first run it allocates one block laid
   * out for the whole run, beside the arena's chunks from that first run. Measured on a training
   * step of an llm-jp-3-1.8b-shaped model (4 layers, nf4), turning it off cut peak RSS from
   * 2.0 GB to 1.25 GB with the same step time: the trainer turns it off for large models.
   */
  memoryPattern?: boolean;
  /**
   * Write onnxruntime's profile (per node run: time, output shapes, bytes of its memory arena in
   * use) to `<profilePrefix>_<date>.json` when the session is released. See memoryProfile().
   */
  profilePrefix?: string;
  /** Use external data files when the weights exceed this many bytes (default 1.5 GB). */
  externalDataThreshold?: number;
  /** Put the weights in this shared external data file (always external; shared between sessions). */
  sharedWeights?: SharedWeights;
}

export type OrtTensor = ort.Tensor;

/**
 * Runs a full garbage collection now. The JavaScript copy of a multi-GB checkpoint is a set of
 * ArrayBuffers that V8 frees only at its next full collection; once onnxruntime holds the
 * weights, collecting at once keeps that copy from sitting beside the training activations.
 */
export function collectGarbage(): void {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    v8.setFlagsFromString("--expose-gc");
    gc = vm.runInNewContext("gc") as () => void;
  }
  gc();
}

/**
 * Collects garbage and waits (up to `maxMs`) until V8 has given the ArrayBuffers back: it frees
 * their memory after the collection, off the main thread, and onnxruntime's run blocks the main
 * thread for a whole training step. Measured on an llm-jp-3-1.8b-shaped nf4 run: right after the
 * collection 1.8 GB of ArrayBuffers were still held, 0.2 GB half a second later; without waiting,
 * the first training step ran beside the JavaScript copy of the weights (peak 4.9 GB, not 3.6).
 * Returns once less than a fifth of the ArrayBuffer bytes are left, or nothing moves any more
 * (at once when they were under 64 MB).
 */
export async function releaseGarbage(maxMs = 5000): Promise<void> {
  const before = process.memoryUsage().arrayBuffers;
  const start = performance.now();
  let last = before;
  let still = 0;
  collectGarbage();
  if (before < 64e6) return; // small models: nothing worth waiting for
  while (performance.now() - start < maxMs) {
    await new Promise((r) => setTimeout(r, 50));
    const now = process.memoryUsage().arrayBuffers;
    if (now < before / 5) return;
    still = now < last ? 0 : still + 1;
    last = now;
    if (still === 10) {
      collectGarbage();
    } else if (still > 20) return;
  }
}

/** The array class onnxruntime expects for each dtype. */
const ARRAY_CLASS: Partial<Record<DType, new (n: number) => TypedArray>> = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  bool: Uint8Array,
};

/** Wraps host data as an onnxruntime tensor (plain numbers are converted to the dtype's array). */
export function tensor(dtype: DType, data: TypedArray | number[], dims: readonly number[]): ort.Tensor {
  const cls = ARRAY_CLASS[dtype];
  if (!cls) throw new Error(`unsupported tensor dtype ${dtype}`);
  const values =
    data instanceof cls ? data : toTypedArray(dtype, Array.from(data as ArrayLike<number>, Number));
  return new ort.Tensor(dtype as ort.Tensor.Type, values as ort.Tensor.DataType, dims);
}

function sessionOptions(opts: SessionOptions): ort.InferenceSession.SessionOptions {
  const device = opts.device ?? "cpu";
  const so: ort.InferenceSession.SessionOptions = {
    executionProviders: device === "cuda" ? ["cuda", "cpu"] : ["cpu"],
    intraOpNumThreads: opts.threads ?? availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: opts.optimization ?? "all",
  };
  if (opts.disablePrepacking) so.extra = { session: { disable_prepacking: "1" } };
  if (opts.memoryPattern === false) so.enableMemPattern = false;
  if (opts.profilePrefix) {
    so.enableProfiling = true;
    so.profileFilePrefix = opts.profilePrefix;
  }
  return so;
}

/** onnxruntime-node's package folder (its `dist/index.js` is what `require.resolve` finds). */
function onnxruntimeNodeDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve("onnxruntime-node")), "..");
}

/** Whether onnxruntime-node's CUDA provider library was installed (ONNXRUNTIME_NODE_INSTALL=cuda12). */
function cudaProviderInstalled(): boolean {
  const bin = join(onnxruntimeNodeDir(), "bin");
  if (!existsSync(bin)) return false;
  return readdirSync(bin).some((napi) =>
    existsSync(join(bin, napi, process.platform, process.arch, "libonnxruntime_providers_cuda.so")),
  );
}

function cudaUnavailable(reason: string): Error {
  return new Error(
    `the CUDA execution provider is not available (${reason}). ` +
      "Fetch onnxruntime-node's CUDA binaries (its install script, which toxlora's package.json denies so " +
      `that nothing downloads unasked): ONNXRUNTIME_NODE_INSTALL=cuda12 node ${join(onnxruntimeNodeDir(), "script", "install")}` +
      ", or use --device cpu.",
  );
}

async function createSession(
  model: Uint8Array | string,
  opts: SessionOptions,
): Promise<ort.InferenceSession> {
  if (opts.device === "cuda" && !cudaProviderInstalled()) {
    throw cudaUnavailable("libonnxruntime_providers_cuda.so is not installed");
  }
  try {
    return typeof model === "string"
      ? await ort.InferenceSession.create(model, sessionOptions(opts))
      : await ort.InferenceSession.create(model, sessionOptions(opts));
  } catch (err) {
    if (opts.device === "cuda") throw cudaUnavailable(err instanceof Error ? err.message : String(err));
    throw err;
  }
}

/**
 * A temporary folder with one external weights file that several sessions share (see
 * ExternalWeights). Release it once every session that uses it has been created.
 */
export class SharedWeights {
  readonly dir = mkdtempSync(join(tmpdir(), "toxlora-onnx-"));
  readonly store = new ExternalWeights(join(this.dir, "weights.data"));
  private models = 0;

  /** Writes the graph next to the shared weights and returns the model file's path. */
  writeModel(graph: Graph): string {
    const path = join(this.dir, `model-${this.models++}.onnx`);
    writeFileSync(path, toOnnx(graph, { externalData: this.store }));
    return path;
  }

  /**
   * Deletes the folder. Sessions already created keep working (their weights are loaded), but a
   * suspended session can no longer resume.
   */
  release(): void {
    this.store.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Serialises a graph and creates an onnxruntime session for it (external data for big weights). */
async function sessionForGraph(graph: Graph, opts: SessionOptions): Promise<ort.InferenceSession> {
  if (initializerBytes(graph) <= (opts.externalDataThreshold ?? EXTERNAL_DATA_BYTES)) {
    return createSession(toOnnx(graph), opts);
  }
  const shared = new SharedWeights();
  try {
    return await createSession(shared.writeModel(graph), opts);
  } finally {
    shared.release();
  }
}

/**
 * A graph ready to run. A session whose model lives in a file (SharedWeights, fromFile) can be
 * suspended to give its memory back and resumed later: the trainer of a large model does that
 * to evaluate without holding the training and evaluation sessions at once.
 */
export class Session {
  private live: ort.InferenceSession | null;

  private constructor(
    session: ort.InferenceSession,
    private readonly path: string | null,
    private readonly opts: SessionOptions,
  ) {
    this.live = session;
  }

  static async fromGraph(graph: Graph, opts: SessionOptions = {}): Promise<Session> {
    if (opts.sharedWeights) return Session.fromFile(opts.sharedWeights.writeModel(graph), opts);
    return new Session(await sessionForGraph(graph, opts), null, opts);
  }

  static async fromFile(path: string, opts: SessionOptions = {}): Promise<Session> {
    return new Session(await createSession(path, opts), path, opts);
  }

  private get ort(): ort.InferenceSession {
    if (!this.live) throw new Error("this session is suspended; resume() it first");
    return this.live;
  }

  get inputNames(): readonly string[] {
    return this.ort.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.ort.outputNames;
  }

  /** Runs the graph; feeds that the model does not take are ignored. */
  async run(feeds: Record<string, ort.Tensor>, outputs?: string[]): Promise<Record<string, ort.Tensor>> {
    const session = this.ort;
    const used: Record<string, ort.Tensor> = {};
    for (const name of session.inputNames) {
      const t = feeds[name];
      if (!t) throw new Error(`missing input "${name}" (graph inputs: ${session.inputNames.join(", ")})`);
      used[name] = t;
    }
    return (await (outputs ? session.run(used, outputs) : session.run(used))) as Record<string, ort.Tensor>;
  }

  /** Releases the native session (weights, memory pools) until {@link resume}. */
  async suspend(): Promise<void> {
    if (!this.path) throw new Error("only a session created from a model file can be suspended");
    await this.live?.release();
    this.live = null;
  }

  /** Creates the native session again from its model file. */
  async resume(): Promise<void> {
    if (this.live) return;
    if (!this.path) throw new Error("only a session created from a model file can be resumed");
    this.live = await createSession(this.path, this.opts);
  }

  async release(): Promise<void> {
    await this.live?.release();
    this.live = null;
  }
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  outputs: Record<string, ort.Tensor>;
}

/** Serializable training state (parameters + optimizer moments + step count) for checkpoints. */
export interface TrainState {
  step: number;
  tensors: Map<string, { data: Float32Array; dims: number[] }>;
}

/**
 * A training-step graph with its live state. The graph must have a scalar output "loss" and an
 * optimizer built by `adamw`/`sgd` (src/engine/optim.ts).
 */
export class TrainSession {
  private readonly values = new Map<string, ort.Tensor>();
  private stepCount = 0;

  private constructor(
    private readonly session: Session,
    private readonly opt: OptimizerGraph,
    private readonly paramShapes: Map<string, number[]>,
  ) {}

  /**
   * @param initial  initial value of every trainable parameter, by name.
   */
  static async create(
    graph: Graph,
    opt: OptimizerGraph,
    initial: Map<string, Float32Array>,
    opts: SessionOptions = {},
  ): Promise<TrainSession> {
    const shapes = new Map(graph.params.map((p) => [p.name, p.shape as number[]]));
    const ts = new TrainSession(await Session.fromGraph(graph, opts), opt, shapes);
    for (const p of graph.params) {
      const data = initial.get(p.name);
      if (!data) throw new Error(`no initial value for parameter ${p.name}`);
      ts.values.set(p.name, tensor("float32", data, p.shape as number[]));
    }
    for (const u of opt.updates) {
      for (const s of u.state) {
        ts.values.set(
          s.input,
          tensor("float32", new Float32Array(s.shape.reduce((a, b) => a * b, 1)), s.shape),
        );
      }
    }
    return ts;
  }

  get step(): number {
    return this.stepCount;
  }

  /** Runs one optimisation step on a batch (`feeds` = data inputs) with learning rate `lr`. */
  async run(feeds: Record<string, ort.Tensor>, lr: number): Promise<StepResult> {
    const t = this.stepCount + 1;
    const all: Record<string, ort.Tensor> = { ...feeds };
    for (const [k, v] of this.values) all[k] = v;
    all[this.opt.lrInput] = tensor("float32", [lr], []);
    all[this.opt.stepInput] = tensor("float32", [t], []);
    const out = await this.session.run(all);
    for (const u of this.opt.updates) {
      this.values.set(u.param, out[u.output]);
      for (const s of u.state) this.values.set(s.input, out[s.output]);
    }
    this.stepCount = t;
    const loss = out.loss;
    if (!loss) throw new Error('training graph has no "loss" output');
    return {
      loss: Number((loss.data as Float32Array)[0]),
      gradNorm: Number((out[this.opt.gradNormOutput].data as Float32Array)[0]),
      outputs: out,
    };
  }

  /** Current parameter tensors (to feed a forward session for evaluation). */
  paramFeeds(): Record<string, ort.Tensor> {
    const r: Record<string, ort.Tensor> = {};
    for (const name of this.paramShapes.keys()) r[name] = this.value(name);
    return r;
  }

  private value(name: string): ort.Tensor {
    const v = this.values.get(name);
    if (!v) throw new Error(`no value for ${name}`);
    return v;
  }

  /** Current parameter values, by name. */
  params(): Map<string, Float32Array> {
    return new Map([...this.paramShapes.keys()].map((n) => [n, this.value(n).data as Float32Array]));
  }

  /** Everything needed to resume: params, optimizer moments and the step count. */
  state(): TrainState {
    return {
      step: this.stepCount,
      tensors: new Map(
        [...this.values].map(([k, v]) => [
          k,
          { data: v.data as Float32Array, dims: [...v.dims] as number[] },
        ]),
      ),
    };
  }

  loadState(state: TrainState): void {
    for (const [k, v] of state.tensors) {
      if (!this.values.has(k)) throw new Error(`checkpoint has unknown tensor ${k}`);
      this.values.set(k, tensor("float32", v.data, v.dims));
    }
    this.stepCount = state.step;
  }

  /** Frees the native session; parameters and optimizer state stay (see Session.suspend). */
  suspend(): Promise<void> {
    return this.session.suspend();
  }

  resume(): Promise<void> {
    return this.session.resume();
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
