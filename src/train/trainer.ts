// The trainer: LoRA fine-tuning of a sequence classifier, end to end.
//
//   data → split (+ balance) → tokenize → [epoch: (re-sample) → length-bucketed batches →
//   one ONNX step graph per batch (forward + backward + AdamW)] → evaluate on the validation
//   split → keep the best adapter → tune thresholds on validation → evaluate the test split.
//
// Everything a run produces goes to its run directory (see RUN_FILES in src/run/types.ts);
// checkpoints at every evaluation and epoch end make `resume: true` continue an interrupted run.
import { existsSync } from "node:fs";
import { appendFile, mkdir, readFile, rm, stat, truncate } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import type { BaselineConfigInput } from "../baseline/config.js";
import { isBaselineModel } from "../baseline/config.js";
import { trainBaseline } from "../baseline/trainer.js";
import type { DataRecord } from "../data/load.js";
import { deriveSeed } from "../data/random.js";
import {
  adamw,
  DROPOUT_KEY,
  dropoutKey,
  Graph,
  grad,
  initializerBytes,
  type OptimizerGraph,
  type OrtTensor,
  releaseGarbage,
  Session,
  type SessionOptions,
  SharedWeights,
  type Tensor,
  TrainSession,
  tensor,
} from "../engine/index.js";
import { writeJsonAtomic } from "../io/atomic.js";
import type { ModelFamily } from "../io/hf-config.js";
import { readHfConfig } from "../io/hf-config.js";
import { resolveModel } from "../io/hub.js";
import { type LoraAdapter, type LoraAdapterConfig, loraConfig, writeAdapter } from "../io/peft.js";
import { readSafetensors, writeSafetensors } from "../io/safetensors.js";
import { baseIdentity, checkSameBase, recordedBase } from "../models/identity.js";
import { fitMaxLength, specialTokenCount } from "../models/limits.js";
import {
  buildClassifier,
  type ClassifierGraph,
  type LoadedCheckpoint,
  loadCheckpoint,
  sessionOptionsFor,
} from "../models/registry.js";
import { checkpointQuantOptions } from "../quant/weights.js";
import { bucketedBatches, naiveBatches } from "../run/batching.js";
import {
  resolveTrainConfig,
  type TrainConfig,
  type TrainConfigInput,
  usesGradientCheckpointing,
} from "../run/config.js";
import { epochRecords, labelRates, prepareData, resolvePosWeight } from "../run/data.js";
import { batchFeeds, encodeTexts, scoreRows } from "../run/encode.js";
import { finishRun, validEvalLine } from "../run/finish.js";
import { type EvalReport, evaluate } from "../run/metrics.js";
import { hashProgress, Progress } from "../run/progress.js";
import { adapterBaseRecord, runQuantization } from "../run/quant.js";
import { defaultRunDir, type TrainOptions, type TrainResult } from "../run/train-contract.js";
import { RUN_FILES } from "../run/types.js";
import { loadTokenizer, type Tokenizer } from "../tokenizers/tokenizer.js";
import { VERSION } from "../version.js";
import { lrAt, warmupStepsFromRatio } from "./schedules.js";
import { withAdapterSettings } from "./start-adapter.js";

// What train() takes and returns is shared with the baseline trainer (src/run/train-contract.ts).
export { defaultRunDir, type TrainOptions, type TrainResult } from "../run/train-contract.js";

interface TrainerState {
  epoch: number;
  /** Next batch of `epoch` to run. */
  batch: number;
  optimizerSteps: number;
  best: number | null;
  bestStep: number;
  badEvals: number;
  trainSeconds: number;
  done: boolean;
  /** Length of metrics.jsonl at this checkpoint: a resumed run cuts off what came after it. */
  metricsBytes?: number;
}

const CHECKPOINT_DIR = "checkpoint";

/** Bigger is better for every metric but loss. */
function metricValue(report: EvalReport, loss: number, metric: TrainConfig["bestMetric"]): number {
  switch (metric) {
    case "loss":
      return -loss;
    case "microF1":
      return report.microF1;
    case "macroPrAuc":
      return report.macro.prAuc ?? 0;
    default:
      return report.macroF1;
  }
}

/** Weight decay as the HF Trainer applies it: not on biases and norm weights. */
function decays(name: string): boolean {
  return !name.endsWith(".bias") && !/norm/i.test(name);
}

/**
 * The PEFT LoRA settings a training config asks for: those of the adapter it starts from (all of
 * them, rank_pattern and exclude_modules included) with the config's dropout, else the config's.
 */
function loraFromConfig(cfg: TrainConfig, adapter?: LoraAdapter): LoraAdapterConfig {
  if (adapter) return { ...adapter.config, lora_dropout: cfg.loraDropout };
  return loraConfig({
    r: cfg.loraR,
    lora_alpha: cfg.loraAlpha,
    lora_dropout: cfg.loraDropout,
    use_rslora: cfg.useRslora,
    target_modules: cfg.targetModules,
  });
}

/** The forward graph used for evaluation: same parameters as the training graph, no dropout. */
function buildEvalGraph(
  ckpt: LoadedCheckpoint,
  lora: LoraAdapterConfig,
  seed: number,
  head: ClassifierGraph["head"],
  padId: number,
) {
  const g = new Graph();
  const m = buildClassifier(g, ckpt, {
    head,
    lora,
    training: false,
    seed,
    padTokenId: padId,
  });
  g.output("probs", m.probs);
  g.output("loss", m.loss());
  return { g, m };
}

/** One micro-batch of an optimizer step: its graph feeds and its number of rows. */
interface MicroBatch {
  feeds: Record<string, OrtTensor>;
  rows: number;
}

/** The dropout masks of micro-batch `micro` of optimizer step `step` (0-based) of a run seeded `seed`. */
function dropoutFeed(seed: number, step: number, micro: number): OrtTensor {
  return tensor("int64", BigInt64Array.of(dropoutKey(seed, step, micro)), []);
}

/**
 * A training step runner: one fused graph (forward + backward + AdamW) when gradients are not
 * accumulated; with accumulation, a gradient graph per micro-batch and an update graph per step.
 */
class Stepper {
  private constructor(
    readonly update: TrainSession,
    private readonly gradSession: Session | null,
    private readonly gradNames: string[],
  ) {}

  static async create(m: ClassifierGraph, g: Graph, loss: Tensor, cfg: TrainConfig, so: SessionOptions) {
    const grads = grad(loss, m.params);
    const optOpts = { weightDecay: cfg.weightDecay, maxGradNorm: cfg.maxGradNorm, decay: decays };
    if (cfg.gradAccum === 1) {
      const opt = adamw(g, grads, optOpts);
      return new Stepper(await TrainSession.create(g, opt, m.initial, so), null, []);
    }
    const names: string[] = [];
    for (const [p, gr] of grads) {
      if (!gr) continue;
      g.output(`grad.${p.name}`, gr);
      names.push(p.name);
    }
    const gradSession = await Session.fromGraph(g, so);
    // The update graph: parameters and their accumulated gradients in, AdamW out.
    const ug = new Graph();
    const map = new Map<Tensor, Tensor | null>();
    for (const p of m.params) {
      const up = ug.param(p.name, p.shape as number[]);
      map.set(up, names.includes(p.name) ? ug.input(`grad.${p.name}`, "float32", p.shape) : null);
    }
    ug.output("loss", ug.input("loss_in", "float32", []));
    const opt: OptimizerGraph = adamw(ug, map, optOpts);
    return new Stepper(await TrainSession.create(ug, opt, m.initial, so), gradSession, names);
  }

  /**
   * One optimizer step over micro-batches. Rows, not micro-batches, weigh equally (the Hugging
   * Face Trainer's num_items_in_batch): each micro-batch's mean loss and gradient count with
   * rows / (rows of the whole step). Returns that step loss and the gradient norm before clipping.
   */
  async step(micro: MicroBatch[], lr: number, seed: number) {
    // Dropout masks follow from the seed and the position in the run, so a resumed run draws
    // the masks the uninterrupted one drew.
    const key = (i: number) => ({ [DROPOUT_KEY]: dropoutFeed(seed, this.update.step, i) });
    if (!this.gradSession) {
      if (micro.length !== 1) throw new Error("a step without accumulation takes one micro-batch");
      const r = await this.update.run({ ...micro[0].feeds, ...key(0) }, lr);
      return { loss: r.loss, gradNorm: r.gradNorm };
    }
    const params = this.update.paramFeeds();
    const total = micro.reduce((s, m) => s + m.rows, 0);
    // Accumulated in float64, so the order of micro-batches does not round differently.
    const sums = new Map(this.gradNames.map((n) => [n, new Float64Array(params[n].data.length)]));
    let loss = 0;
    for (const [i, { feeds, rows }] of micro.entries()) {
      const w = rows / total;
      const out = await this.gradSession.run({ ...feeds, ...params, ...key(i) });
      loss += Number(out.loss.data[0]) * w;
      for (const n of this.gradNames) {
        const d = out[`grad.${n}`].data as Float32Array;
        const acc = sums.get(n) as Float64Array;
        for (let i = 0; i < d.length; i++) acc[i] += d[i] * w;
      }
    }
    const feeds = Object.fromEntries(
      this.gradNames.map((n) => [
        `grad.${n}`,
        tensor("float32", Float32Array.from(sums.get(n) as Float64Array), [...(params[n].dims as number[])]),
      ]),
    );
    feeds.loss_in = tensor("float32", [loss], []);
    const r = await this.update.run(feeds, lr);
    return { loss, gradNorm: r.gradNorm };
  }

  /** Frees the native sessions while a large model is evaluated; state is kept. */
  async suspend(): Promise<void> {
    await this.update.suspend();
    await this.gradSession?.suspend();
  }

  async resume(): Promise<void> {
    await this.update.resume();
    await this.gradSession?.resume();
  }

  async release(): Promise<void> {
    await this.update.release();
    await this.gradSession?.release();
  }
}

/**
 * The micro-batches of one epoch (row indices). Shuffled (seeded per epoch) unless `shuffle` is
 * off; with bucketing off and no shuffle, consecutive rows in file order.
 */
function trainBatches(enc: Encoded, cfg: TrainConfig, epoch: number): number[][] {
  const opts = { batchSize: cfg.batchSize, seed: deriveSeed(cfg.seed, epoch), shuffle: cfg.shuffle };
  return cfg.bucketing
    ? bucketedBatches(
        enc.ids.map((x) => x.length),
        opts,
      )
    : naiveBatches(enc.ids.length, opts);
}

interface Encoded {
  records: DataRecord[];
  ids: number[][];
  labels: number[][];
}

function encodeRecords(tok: Tokenizer, records: DataRecord[], maxLength: number): Encoded {
  return {
    records,
    ids: encodeTexts(
      tok,
      records.map((r) => r.text),
      maxLength,
    ),
    labels: records.map((r) => r.labels),
  };
}

/** Probabilities (rows in input order) and mean loss of the eval graph over a data set. */
function predictProbs(
  session: Session,
  paramFeeds: Record<string, OrtTensor>,
  data: Encoded,
  padId: number,
  withTokenTypes: boolean,
  batchSize: number,
): Promise<{ probs: number[][]; loss: number }> {
  return scoreRows(session, data.ids, {
    padId,
    withTokenTypes,
    batchSize,
    extraFeeds: paramFeeds,
    labels: data.labels,
  });
}

async function saveState(runDir: string, stepper: Stepper, state: TrainerState): Promise<void> {
  const dir = join(runDir, CHECKPOINT_DIR);
  await mkdir(dir, { recursive: true });
  const s = stepper.update.state();
  state.metricsBytes = (await stat(join(runDir, RUN_FILES.metrics))).size;
  await writeSafetensors(
    join(dir, "state.safetensors"),
    new Map([...s.tensors].map(([k, v]) => [k, { shape: v.dims, data: v.data }])),
    { step: String(s.step) },
  );
  await writeJsonAtomic(join(dir, "trainer_state.json"), state);
}

async function writeBestAdapter(
  runDir: string,
  model: TrainingSessions,
  cfg: TrainConfig,
  params: Map<string, Float32Array>,
): Promise<void> {
  const shapes = new Map(model.params.map((p) => [p.name, p.shape]));
  await writeAdapter(
    join(runDir, RUN_FILES.adapter),
    { ...model.adapterConfig, base_model_name_or_path: cfg.model, ...(await adapterBaseRecord(runDir)) },
    new Map([...params].map(([k, data]) => [k, { data, shape: shapes.get(k) ?? [data.length] }])),
  );
}

/**
 * Where evaluation runs. Small models keep an evaluation session beside the training one. A
 * large model cannot hold both in memory, so the training sessions are suspended and the
 * evaluation session is created from its model file for the time of an evaluation.
 */
class Evaluator {
  private constructor(
    private readonly stepper: Stepper,
    private readonly kept: Session | null,
    private readonly modelFile: string | null,
    private readonly opts: SessionOptions,
  ) {}

  static kept(stepper: Stepper, session: Session): Evaluator {
    return new Evaluator(stepper, session, null, {});
  }

  static swapped(stepper: Stepper, modelFile: string, opts: SessionOptions): Evaluator {
    return new Evaluator(stepper, null, modelFile, opts);
  }

  /** Runs `fn` with the evaluation session; `last` leaves the training sessions released. */
  async use<T>(fn: (s: Session) => Promise<T>, last = false): Promise<T> {
    if (this.kept) return fn(this.kept);
    await this.stepper.suspend();
    const session = await Session.fromFile(this.modelFile as string, this.opts);
    try {
      return await fn(session);
    } finally {
      await session.release();
      if (!last) await this.stepper.resume();
    }
  }

  async release(): Promise<void> {
    await this.kept?.release();
  }
}

/** The sessions of a run and what the trainer needs to know about the model's parameters. */
interface TrainingSessions {
  stepper: Stepper;
  evaluator: Evaluator;
  family: ModelFamily;
  /** Trainable parameters (PEFT adapter keys) and their shapes. */
  params: { name: string; shape: number[] }[];
  initial: Map<string, Float32Array>;
  adapterConfig: Partial<LoraAdapterConfig>;
  warnings: string[];
  /** Frees the sessions and the model files of a large model. */
  release(): Promise<void>;
}

/** Frozen weights beyond this size are trained in low-memory mode by default (see createSessions). */
const LARGE_MODEL_BYTES = 1.5e9;

/**
 * Loads the checkpoint, builds the training and evaluation graphs and their sessions. Only the
 * sessions leave this function, so the JavaScript copy of the weights can be garbage-collected
 * once onnxruntime owns them. In low-memory mode (default for frozen weights > 1.5 GB) both graphs are written once,
 * next to one shared external weights file, skips pre-packing (which would copy every matrix
 * again) and never holds the training and evaluation sessions at the same time.
 */
async function createSessions(
  modelDir: string,
  cfg: TrainConfig,
  head: ClassifierGraph["head"],
  padId: number,
  so: SessionOptions,
  start: { lowMemory?: boolean; adapter?: LoraAdapter } = {},
): Promise<TrainingSessions> {
  const { lowMemory, adapter } = start;
  const ckpt = await loadCheckpoint(modelDir, checkpointQuantOptions(cfg));
  const g = new Graph();
  const lora = loraFromConfig(cfg, adapter);
  const m = buildClassifier(g, ckpt, {
    head,
    lora,
    adapter,
    training: true,
    gradientCheckpointing: usesGradientCheckpointing(cfg),
    seed: cfg.seed,
    padTokenId: padId,
  });
  const loss = m.loss();
  g.output("loss", loss);
  const ev = buildEvalGraph(ckpt, lora, cfg.seed, head, padId);
  const shared = (lowMemory ?? initializerBytes(g) > LARGE_MODEL_BYTES) ? new SharedWeights() : undefined;
  const opts: SessionOptions = {
    ...so,
    ...sessionOptionsFor(g),
    sharedWeights: shared,
    ...(shared ? { memoryPattern: false } : {}),
  };
  try {
    const stepper = await Stepper.create(m, g, loss, cfg, opts);
    const evaluator = shared
      ? Evaluator.swapped(stepper, shared.writeModel(ev.g), opts)
      : Evaluator.kept(stepper, await Session.fromGraph(ev.g, opts));
    return {
      stepper,
      evaluator,
      family: ckpt.config.family,
      params: m.params.map((p) => ({ name: p.name, shape: p.shape as number[] })),
      initial: m.initial,
      adapterConfig: m.adapterConfig(),
      warnings: m.warnings,
      async release() {
        await stepper.release();
        await evaluator.release();
        shared?.release();
      },
    };
  } catch (err) {
    shared?.release();
    throw err;
  }
}

/** A resumed run must read the data files it started with: same bytes (sha256) as in its manifest. */
async function checkSameData(runDir: string, files: { path: string; sha256: string }[]): Promise<void> {
  const saved = JSON.parse(await readFile(join(runDir, RUN_FILES.manifest), "utf8")) as {
    files: { path: string; sha256: string }[];
  };
  for (const f of files) {
    const was = saved.files.find((s) => s.path === f.path);
    if (was && was.sha256 !== f.sha256) {
      throw new Error(
        `--resume: ${f.path} has changed since the run started (sha256 ${was.sha256.slice(0, 12)}…, now ${f.sha256.slice(0, 12)}…); ` +
          "a run cannot continue on other data: restore the file or start a new run",
      );
    }
  }
}

/** What is fixed once a run starts: its directory, resolved config and prepared data. */
interface RunPlan {
  runDir: string;
  stateFile: string;
  cfg: TrainConfig;
  /** The saved trainer state when resuming, else null. */
  resumed: TrainerState | null;
  /** An adapter to start from (--init-adapter), if any. */
  startAdapter: LoraAdapter | undefined;
  modelDir: string;
  data: Awaited<ReturnType<typeof prepareData>>;
  labels: string[];
  tok: Tokenizer;
  padId: number;
  posWeight: ReturnType<typeof resolvePosWeight>;
  head: { kind: TrainConfig["head"]; numLabels: number; posWeight: ReturnType<typeof resolvePosWeight> };
  /** Each epoch's (re-sampled) training records. */
  epochs: DataRecord[][];
}

/** Every split tokenized once, the epochs' batches and the learning-rate schedule over them. */
interface EncodedRun {
  valid: Encoded;
  test: Encoded;
  epochs: Encoded[];
  epochBatches: number[][][];
  totalSteps: number;
  lrOf: (step: number) => number;
}

/** The epoch loop's mutable part: the trainer state (checkpointed) and the best parameters so far. */
interface LoopState {
  state: TrainerState;
  best: Map<string, Float32Array>;
}

/**
 * Step 1, resolve config: the given config, or the saved one when resuming (which then wins:
 * a resumed run must see the same data, model and schedule), with an adapter's settings applied.
 */
async function resolveRun(input: TrainConfigInput) {
  let given = input;
  const first = resolveTrainConfig(given);
  const runDir = resolve(first.out ?? defaultRunDir(first.model));
  const stateFile = join(runDir, CHECKPOINT_DIR, "trainer_state.json");
  let resumed: TrainerState | null = null;
  if (first.resume) {
    if (!existsSync(stateFile)) throw new Error(`--resume: ${runDir} has no checkpoint to resume from`);
    const saved = JSON.parse(await readFile(join(runDir, RUN_FILES.config), "utf8")) as {
      train: TrainConfig;
    };
    given = { ...saved.train, resume: true, out: runDir };
    resumed = JSON.parse(await readFile(stateFile, "utf8")) as TrainerState;
    if (resumed.done) throw new Error(`--resume: the run in ${runDir} is already complete`);
  } else if (existsSync(join(runDir, RUN_FILES.config))) {
    throw new Error(`${runDir} already holds a run; choose another --out or pass --resume`);
  }
  // An adapter to start from decides the LoRA settings and the head kind.
  const start = await withAdapterSettings(given);
  return {
    runDir,
    stateFile,
    resumed,
    cfg: resolveTrainConfig(start.input),
    startAdapter: start.adapter ?? undefined,
  };
}

/**
 * Step 2, prepare data: model folder, splits and epochs, tokenizer, max length, class weights.
 * Everything that can be refused is checked here, before the run directory exists, so a start that
 * fails leaves nothing behind and the same command can simply be run again.
 */
async function prepareRun(run: Awaited<ReturnType<typeof resolveRun>>, progress: Progress): Promise<RunPlan> {
  let cfg = run.cfg;
  const modelDir = await resolveModel(cfg.model);
  if (run.startAdapter && cfg.adapter) {
    await checkSameBase(cfg.adapter, recordedBase(run.startAdapter.config), modelDir);
  }
  const data = await prepareData(cfg);
  if (run.resumed) await checkSameData(run.runDir, data.manifest.files);
  for (const w of data.manifest.warnings) progress.warn(w);
  const labels = data.labels;
  const tok = await loadTokenizer(modelDir);
  const fitted = fitMaxLength(cfg.maxLength, await readHfConfig(modelDir), specialTokenCount(tok));
  if (fitted.notice) progress.log(`note: ${fitted.notice}`);
  cfg = { ...cfg, maxLength: fitted.maxLength };
  const posWeight = resolvePosWeight(cfg.posWeight, data.train, labels);
  const epochs = Array.from({ length: cfg.epochs }, (_, e) => epochRecords(data.train, labels, cfg, e + 1));
  const head = { kind: cfg.head, numLabels: labels.length, posWeight };
  return { ...run, cfg, modelDir, data, labels, tok, padId: tok.padId, posWeight, head, epochs };
}

/** Step 3, build sessions: the training and evaluation sessions (the weights then live in onnxruntime). */
async function buildSessions(
  plan: RunPlan,
  options: TrainOptions,
  progress: Progress,
): Promise<TrainingSessions> {
  const { cfg, modelDir } = plan;
  progress.log(`loading ${modelDir}`);
  // Hashed first, with progress (a large base takes seconds): config.json's `base` and the
  // quantized cache's key then find the hash remembered.
  await baseIdentity(modelDir, cfg.model, undefined, hashProgress(options.progress));
  const so: SessionOptions = { device: cfg.device, threads: cfg.threads ?? availableParallelism() };
  const model = await createSessions(modelDir, cfg, plan.head, plan.padId, so, {
    lowMemory: options.lowMemory,
    adapter: plan.startAdapter,
  });
  // The JS copy of the weights is unreachable now that the sessions hold them: give it back
  // before the first step.
  await releaseGarbage();
  for (const w of model.warnings) progress.log(`note: ${w}`);
  return model;
}

/** The run directory's first files (config.json, manifest), written once the model is known to work. */
async function openRunDir(plan: RunPlan, family: ModelFamily): Promise<void> {
  const { runDir, cfg } = plan;
  await mkdir(runDir, { recursive: true });
  if (plan.resumed) return;
  await writeJsonAtomic(join(runDir, RUN_FILES.config), {
    toxloraVersion: VERSION,
    labels: plan.labels,
    model: cfg.model,
    modelDir: plan.modelDir,
    family,
    head: cfg.head,
    maxLength: cfg.maxLength,
    padTokenId: plan.padId,
    posWeight: plan.posWeight ?? null,
    train: cfg,
    base: await baseIdentity(plan.modelDir, cfg.model),
    quantization: runQuantization(cfg),
  });
  await writeJsonAtomic(join(runDir, RUN_FILES.manifest), plan.data.manifest);
  await rm(join(runDir, RUN_FILES.metrics), { force: true });
}

/** Tokenizes every split once and lays out the epochs' batches and the learning-rate schedule. */
function encodeRun(plan: RunPlan): EncodedRun {
  const { tok, cfg, data } = plan;
  const valid = encodeRecords(tok, data.valid, cfg.maxLength);
  const test = encodeRecords(tok, data.test, cfg.maxLength);
  const epochs = plan.epochs.map((recs) => encodeRecords(tok, recs, cfg.maxLength));
  const epochBatches = epochs.map((enc, e) => trainBatches(enc, cfg, e + 1));
  const stepsPerEpoch = epochBatches.map((b) => Math.ceil(b.length / cfg.gradAccum));
  const totalSteps = stepsPerEpoch.reduce((a, b) => a + b, 0);
  const warmupSteps = warmupStepsFromRatio(totalSteps, cfg.warmupRatio);
  const lrOf = (step: number) => lrAt(step, { base: cfg.lr, totalSteps, warmupSteps, kind: cfg.scheduler });
  return { valid, test, epochs, epochBatches, totalSteps, lrOf };
}

/** A fresh trainer state, or the checkpoint's: optimizer state, metrics cut back, best adapter so far. */
async function restoreLoop(plan: RunPlan, model: TrainingSessions, progress: Progress): Promise<LoopState> {
  const { runDir, resumed } = plan;
  const state: TrainerState = resumed ?? {
    epoch: 1,
    batch: 0,
    optimizerSteps: 0,
    best: null,
    bestStep: 0,
    badEvals: 0,
    trainSeconds: 0,
    done: false,
  };
  let best = new Map(model.initial);
  if (resumed) {
    const st = await readSafetensors(join(runDir, CHECKPOINT_DIR, "state.safetensors"));
    model.stepper.update.loadState({
      step: resumed.optimizerSteps,
      tensors: new Map([...st].map(([k, v]) => [k, { data: v.data, dims: v.shape }])),
    });
    // Steps logged after the checkpoint will run again: drop their lines.
    if (resumed.metricsBytes !== undefined)
      await truncate(join(runDir, RUN_FILES.metrics), resumed.metricsBytes);
    const adapterFile = join(runDir, RUN_FILES.adapter, "adapter_model.safetensors");
    if (existsSync(adapterFile)) {
      const saved = await readSafetensors(adapterFile);
      best = new Map([...saved].map(([k, v]) => [k, v.data]));
    }
    progress.log(
      `resuming ${runDir} at epoch ${state.epoch}, batch ${state.batch} (step ${state.optimizerSteps})`,
    );
  }
  return { state, best };
}

const logMetric = (runDir: string, rec: object) =>
  appendFile(join(runDir, RUN_FILES.metrics), `${JSON.stringify(rec)}\n`);

/**
 * One validation evaluation during training: logs it, keeps the parameters when they are the best
 * so far (writing the adapter), and says whether early stopping should stop the run.
 */
async function validate(
  plan: RunPlan,
  model: TrainingSessions,
  enc: EncodedRun,
  loop: LoopState,
  epoch: number,
  progress: Progress,
): Promise<boolean> {
  const { runDir, cfg, labels, padId } = plan;
  const { stepper, evaluator, family } = model;
  const { state } = loop;
  const { valid } = enc;
  if (valid.ids.length === 0) {
    loop.best = stepper.update.params();
    await writeBestAdapter(runDir, model, cfg, loop.best);
    return false;
  }
  const paramFeeds = stepper.update.paramFeeds();
  const { probs, loss: vloss } = await evaluator.use((session) =>
    predictProbs(session, paramFeeds, valid, padId, family === "bert", cfg.batchSize * 2),
  );
  const report = evaluate(probs, valid.labels, labels);
  const value = metricValue(report, vloss, cfg.bestMetric);
  await logMetric(runDir, validEvalLine({ step: state.optimizerSteps, epoch, loss: vloss }, report, labels));
  progress.log(
    `eval step ${state.optimizerSteps}: loss ${vloss.toFixed(4)}  macro-F1 ${report.macroF1.toFixed(4)}  ${labels
      .map((l) => `${l} ${report.perLabel[l].f1.toFixed(3)}`)
      .join("  ")}`,
  );
  if (state.best === null || value > state.best) {
    state.best = value;
    state.bestStep = state.optimizerSteps;
    state.badEvals = 0;
    loop.best = stepper.update.params();
    await writeBestAdapter(runDir, model, cfg, loop.best);
    return false;
  }
  state.badEvals++;
  return cfg.earlyStopping > 0 && state.badEvals >= cfg.earlyStopping;
}

/** Running loss and tokens/s of the steps: the progress bar and metrics.jsonl's step lines. */
class StepMeter {
  private runningLoss = Number.NaN;
  private tokensSinceLog = 0;
  private lastLog = Date.now();
  // Its own clock, so elapsed time and ETA count from the first step, not from model loading.
  private readonly bar: Progress;
  private readonly t0: number;

  constructor(
    private readonly plan: RunPlan,
    private readonly totalSteps: number,
    private readonly state: TrainerState,
    mode: TrainOptions["progress"],
  ) {
    this.bar = new Progress("train", mode ?? "auto", process.stderr, state.optimizerSteps);
    this.t0 = Date.now() - state.trainSeconds * 1000;
  }

  /** Logs the step just taken (state.optimizerSteps counts it) and moves the bar. */
  async record(epoch: number, lr: number, r: { loss: number; gradNorm: number }, micro: StepBatch[]) {
    const { state } = this;
    const tokens = micro.reduce((s, x) => s + x.tokens, 0);
    this.tokensSinceLog += tokens;
    const now = Date.now();
    const tokPerS = (this.tokensSinceLog * 1000) / Math.max(1, now - this.lastLog);
    this.runningLoss = Number.isNaN(this.runningLoss) ? r.loss : 0.9 * this.runningLoss + 0.1 * r.loss;
    await logMetric(this.plan.runDir, {
      type: "step",
      step: state.optimizerSteps,
      epoch,
      loss: r.loss,
      lr,
      gradNorm: r.gradNorm,
      tokens,
      paddedTokens: micro.reduce((s, x) => s + x.padded, 0),
      tokensPerS: tokPerS,
    });
    if (now - this.lastLog > 2000) {
      this.tokensSinceLog = 0;
      this.lastLog = now;
    }
    this.bar.update({
      done: state.optimizerSteps,
      total: this.totalSteps,
      fields: {
        epoch: `${epoch}/${this.plan.cfg.epochs}`,
        loss: this.runningLoss,
        lr,
        "tok/s": Math.round(tokPerS),
      },
    });
    state.trainSeconds = (Date.now() - this.t0) / 1000;
  }
}

/** The micro-batches of one optimizer step: graph feeds, rows and token counts. */
type StepBatch = MicroBatch & { tokens: number; padded: number };

/** metrics.jsonl's line at the start of epoch `e`: its rows and label rates. */
async function logEpochStart(plan: RunPlan, enc: EncodedRun, e: number): Promise<void> {
  const epoch = enc.epochs[e - 1];
  await logMetric(plan.runDir, {
    type: "epoch",
    epoch: e,
    rows: epoch.ids.length,
    ids: epoch.records.map((r) => r.id),
    labelRates: labelRates(epoch.records, plan.labels),
  });
}

/** One optimizer step over the micro-batches of epoch `e` from batch `b` on; advances the state. */
async function trainStep(
  plan: RunPlan,
  model: TrainingSessions,
  enc: EncodedRun,
  state: TrainerState,
  at: { e: number; b: number },
  meter: StepMeter,
): Promise<void> {
  const { cfg, padId } = plan;
  const epoch = enc.epochs[at.e - 1];
  const micro: StepBatch[] = enc.epochBatches[at.e - 1].slice(at.b, at.b + cfg.gradAccum).map((idx) => ({
    ...batchFeeds(epoch.ids, idx, padId, model.family === "bert", epoch.labels),
    rows: idx.length,
  }));
  const lr = enc.lrOf(state.optimizerSteps);
  const r = await model.stepper.step(
    micro.map((x) => ({ feeds: x.feeds, rows: x.rows })),
    lr,
    cfg.seed,
  );
  if (!Number.isFinite(r.loss))
    throw new Error(`training diverged: loss is ${r.loss} at step ${state.optimizerSteps + 1}`);
  state.optimizerSteps++;
  state.batch = at.b + cfg.gradAccum;
  await meter.record(at.e, lr, r, micro);
}

/** Whether --eval-every N asks for a validation right after the step just taken. */
const evalDue = (cfg: TrainConfig, steps: number) =>
  typeof cfg.evalEvery === "number" && steps % cfg.evalEvery === 0;

/** How an epoch ended: run the next one, stop early (no improvement), or stop because of the signal. */
type EpochEnd = "next" | "early-stop" | "interrupted";

/**
 * Epoch `e` from the state's batch on: its steps, the validations --eval-every asks for (each
 * followed by a checkpoint), and the end-of-epoch validation unless the last step just had one.
 */
async function runEpoch(
  plan: RunPlan,
  model: TrainingSessions,
  enc: EncodedRun,
  loop: LoopState,
  e: number,
  ctx: { meter: StepMeter; signal?: AbortSignal; progress: Progress },
): Promise<EpochEnd> {
  const { runDir, cfg } = plan;
  const { state } = loop;
  if (state.batch === 0) await logEpochStart(plan, enc, e);
  for (let b = state.batch; b < enc.epochBatches[e - 1].length; b += cfg.gradAccum) {
    await trainStep(plan, model, enc, state, { e, b }, ctx.meter);
    if (evalDue(cfg, state.optimizerSteps)) {
      const stop = await validate(plan, model, enc, loop, e, ctx.progress);
      await saveState(runDir, model.stepper, state);
      if (stop) return "early-stop";
    }
    if (ctx.signal?.aborted) return "interrupted";
  }
  const stop =
    !evalDue(cfg, state.optimizerSteps) && (await validate(plan, model, enc, loop, e, ctx.progress));
  state.epoch = e + 1;
  state.batch = 0;
  return stop ? "early-stop" : "next";
}

/**
 * Step 4, the epoch loop: the epochs from the checkpoint's on, a checkpoint after each, early
 * stopping. Returns whether the run was interrupted (by `options.signal`).
 */
async function epochLoop(
  plan: RunPlan,
  model: TrainingSessions,
  enc: EncodedRun,
  loop: LoopState,
  options: TrainOptions,
  progress: Progress,
): Promise<boolean> {
  const { state } = loop;
  const meter = new StepMeter(plan, enc.totalSteps, state, options.progress);
  for (let e = state.epoch; e <= plan.cfg.epochs; e++) {
    const end = await runEpoch(plan, model, enc, loop, e, { meter, signal: options.signal, progress });
    await saveState(plan.runDir, model.stepper, state);
    if (end === "interrupted") return true;
    if (end === "early-stop") {
      progress.log(`early stopping after epoch ${e}: no improvement in ${state.badEvals} evaluations`);
      return false;
    }
  }
  return false;
}

/** Step 5, evaluate and select: the best parameters scored on validation and test. Frees the sessions. */
async function evaluateBest(plan: RunPlan, model: TrainingSessions, enc: EncodedRun, loop: LoopState) {
  const { cfg, padId } = plan;
  const { valid, test } = enc;
  const withTokenTypes = model.family === "bert";
  const evalBatch = cfg.batchSize * 2;
  const bestFeeds = Object.fromEntries(
    model.params.map((p) => [
      p.name,
      tensor("float32", loop.best.get(p.name) ?? new Float32Array(), p.shape),
    ]),
  );
  const final = await model.evaluator.use(
    async (session) => ({
      valid:
        valid.ids.length > 0
          ? await predictProbs(session, bestFeeds, valid, padId, withTokenTypes, evalBatch)
          : null,
      test: await predictProbs(session, bestFeeds, test, padId, withTokenTypes, evalBatch),
    }),
    true,
  );
  await model.release();
  return final;
}

/**
 * Step 6, write run: calibration and thresholds tuned on validation, the test evaluation (eval.json
 * and per-row files; src/run/finish.ts, as the baseline trainer), then the state marked done.
 */
async function writeRun(
  plan: RunPlan,
  enc: EncodedRun,
  loop: LoopState,
  final: Awaited<ReturnType<typeof evaluateBest>>,
  progress: Progress,
): Promise<TrainResult> {
  const { state } = loop;
  const result = await finishRun(
    {
      runDir: plan.runDir,
      labels: plan.labels,
      cfg: plan.cfg,
      valid: final.valid ? { probs: final.valid.probs, truth: enc.valid.labels } : null,
      test: { records: enc.test.records, probs: final.test.probs, loss: final.test.loss },
      summary: { bestStep: state.bestStep, steps: state.optimizerSteps, trainSeconds: state.trainSeconds },
    },
    progress,
  );
  state.done = true;
  await writeJsonAtomic(plan.stateFile, state);
  return result;
}

/** What an interrupted run returns: no evaluation yet, the run stays resumable. */
function interruptedResult(plan: RunPlan, state: TrainerState): TrainResult {
  const { runDir, labels } = plan;
  return {
    runDir,
    labels,
    eval: evaluate([], [], labels),
    evalAt05: evaluate([], [], labels),
    thresholds: labels.map(() => 0.5),
    degenerate: {},
    bestStep: state.bestStep,
    steps: state.optimizerSteps,
    trainSeconds: state.trainSeconds,
    interrupted: true,
  };
}

/**
 * Fine-tunes a classifier as `config` says and writes a complete run directory. `model: "tfidf-lr"`
 * trains the character n-gram TF-IDF + logistic regression baseline instead (src/baseline/).
 * The steps: resolve config → prepare data → build sessions → epoch loop → evaluate and select →
 * write run (the files are RUN_FILES in src/run/types.ts).
 */
export async function train(
  input: TrainConfigInput | BaselineConfigInput,
  options: TrainOptions = {},
): Promise<TrainResult> {
  if (isBaselineModel(input.model)) return trainBaseline(input as BaselineConfigInput, options);
  const progress = new Progress("train", options.progress ?? "auto");
  const plan = await prepareRun(await resolveRun(input as TrainConfigInput), progress);
  const model = await buildSessions(plan, options, progress);
  // Sessions and temporary model files are freed however the run ends.
  try {
    await openRunDir(plan, model.family); // only now: the model and options are known to work
    const enc = encodeRun(plan);
    const loop = await restoreLoop(plan, model, progress);
    if (await epochLoop(plan, model, enc, loop, options, progress)) {
      await model.release();
      progress.log(`interrupted: run \`toxlora train --out ${plan.runDir} --resume\` to continue`);
      return interruptedResult(plan, loop.state);
    }
    return await writeRun(plan, enc, loop, await evaluateBest(plan, model, enc, loop), progress);
  } finally {
    await model.release();
  }
}
