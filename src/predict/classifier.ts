// A trained run as a ready-to-use classifier: the base model with the run's LoRA adapter merged
// into its weights (so prediction costs the same as the base model), the run's tokenizer settings,
// labels and tuned thresholds.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { TfidfClassifier } from "../baseline/classifier.js";
import { isBaselineModel, refuseBaseOptions } from "../baseline/config.js";
import { Graph, Session, type SessionOptions } from "../engine/index.js";
import { Attributor } from "../explain/attribute.js";
import { resolveModel } from "../io/hub.js";
import { readAdapter } from "../io/peft.js";
import { checkSameBase, recordedBase } from "../models/identity.js";
import { fitMaxLength, specialTokenCount } from "../models/limits.js";
import type { HashProgress } from "../models/quantized-load.js";
import {
  buildClassifier,
  type ClassifierGraph,
  type LoadedCheckpoint,
  loadCheckpoint,
  sessionOptionsFor,
} from "../models/registry.js";
import {
  blockSizeOf,
  checkpointQuantOptions,
  type QuantizeOptions,
  type QuantLoadOptions,
} from "../quant/weights.js";
import { applyCalibration, type Calibration, readCalibration } from "../run/calibration.js";
import { encodeTextsCapped, scoreRows } from "../run/encode.js";
import { savedDegenerateWarnings } from "../run/label-checks.js";
import { decide } from "../run/output.js";
import { runLoadQuant } from "../run/quant.js";
import { type RunConfig, readRunConfig, readThresholds } from "../run/run-config.js";
import {
  type BaseQuantization,
  type Classifier,
  type PredictOptions,
  RUN_FILES,
  type Scored,
  type TrainedClassifier,
} from "../run/types.js";
import { loadTokenizer, type Tokenizer } from "../tokenizers/tokenizer.js";

// The run-directory readers live with the run contract; re-exported here for callers that load
// a classifier and read its run from one place.
export { type RunConfig, readRunConfig, readThresholds } from "../run/run-config.js";

/** Rows per forward pass unless told otherwise. */
export const DEFAULT_BATCH_SIZE = 16;

/**
 * `quantize` (and `quantBlockSize`, `doubleQuant`) left undefined load the base as the run was
 * trained (config.json); given, they win, with a notice when they differ from the trained scheme.
 */
export interface LoadClassifierOptions extends SessionOptions, QuantLoadOptions {
  /** Rows per forward pass (default 16). */
  batchSize?: number;
  /** Override the run's max length (tokens). */
  maxLength?: number;
  /** Called with each notice as it arises (they are also kept in `notices`). */
  onNotice?: (line: string) => void;
  /**
   * Progress of hashing the base's weight files (checking the run's base, keying the quantized
   * cache); called only when they are not remembered yet (see checkpointHash), e.g. hashProgress().
   */
  onHashProgress?: HashProgress;
  /**
   * Kernel of a quantized int8/int4 base: "matmulnbits" (default: float32 activations, equal to
   * the float32 model on the dequantized weights; int4 on MatMulNBits, int8 dequantized per layer
   * into float32's GEMM, which measured faster than MatMulNBits' 8-bit path) or "qgemm" (the base requantized per output
   * channel for onnxruntime's int8 GEMM, activations quantized to 8 bits per tensor: about 2×
   * faster at batch 32 on an x86 CPU with VNNI, see bench/results/quantize-predict.json). Refused
   * with an nf4 or float32 base, which have one kernel each.
   */
  quantKernel?: "matmulnbits" | "qgemm";
  /**
   * Pass on (as notices) the warnings of the run's test evaluation about labels the model has not
   * learned (eval.json `degenerate`). Default true; `evaluateRun` checks its own data instead.
   */
  evalWarnings?: boolean;
}

/** The base model folder of a run: where it was trained from, else resolved again (Hub cache). */
export async function runModelDir(run: RunConfig): Promise<string> {
  return existsSync(join(run.modelDir, "config.json")) ? run.modelDir : resolveModel(run.model);
}

/**
 * Adds the run's merged classifier to a new graph (inputs input_ids, attention_mask and, for BERT,
 * token_type_ids). The checkpoint's arrays are modified in place by the merge.
 */
export async function buildRunGraph(
  runDir: string,
  run: RunConfig,
  ckpt: LoadedCheckpoint,
  opts: {
    tokenTypeInput?: boolean;
    quantizeMerged?: QuantizeOptions;
    baseKernel?: "matmulnbits" | "qgemm";
    onHashProgress?: HashProgress;
  } = {},
): Promise<{ g: Graph; m: ClassifierGraph }> {
  const adapterDir = join(runDir, RUN_FILES.adapter);
  const adapter = await readAdapter(adapterDir);
  await checkSameBase(adapterDir, recordedBase(adapter.config) ?? run.base, ckpt.dir, opts.onHashProgress);
  const g = new Graph();
  const m = buildClassifier(g, ckpt, {
    head: { kind: run.head, numLabels: run.labels.length },
    adapter,
    merged: true,
    mergeInPlace: true,
    padTokenId: run.padTokenId,
    tokenTypeInput: opts.tokenTypeInput,
    quantizeMerged: opts.quantizeMerged,
    baseKernel: opts.baseKernel,
  });
  return { g, m };
}

/** A run's classifier; see {@link loadClassifier}. */
export class RunClassifier implements TrainedClassifier {
  private constructor(
    readonly runDir: string,
    readonly labels: string[],
    readonly thresholds: number[],
    readonly tokenizer: Tokenizer,
    private readonly session: Session,
    private readonly withTokenTypes: boolean,
    readonly maxLength: number,
    readonly batchSize: number,
    /** Things the user should know, e.g. that the run's maxLength was lowered to the model's limit. */
    readonly notices: string[] = [],
    private readonly sessionOptions: SessionOptions = {},
    /** The run's calibration (calibration.json), applied to every probability; null when none. */
    readonly calibration: Calibration | null = null,
    /** How the base's linear weights are quantized (scheme, effective block size); null: float32. */
    readonly quant: {
      scheme: string;
      blockSize: number;
      doubleQuant?: boolean;
      kernel?: "qgemm";
    } | null = null,
  ) {}

  private attributorLoad?: Promise<Attributor>;

  /**
   * The run's attribution graph (see src/explain/attribute.ts), built on first use: it loads the base
   * checkpoint again and holds a second copy of the weights while the classifier is open.
   */
  attributor(): Promise<Attributor> {
    this.attributorLoad ??= (async () => {
      const run = await readRunConfig(this.runDir);
      const ckpt = await loadCheckpoint(await runModelDir(run));
      return Attributor.create(ckpt, {
        ...this.sessionOptions,
        head: { kind: run.head, numLabels: run.labels.length },
        adapter: await readAdapter(join(this.runDir, RUN_FILES.adapter)),
        padTokenId: run.padTokenId,
        baselineId: this.tokenizer.padId,
      });
    })();
    return this.attributorLoad;
  }

  static async load(runDir: string, opts: LoadClassifierOptions = {}): Promise<RunClassifier> {
    const run = await readRunConfig(runDir);
    const modelDir = await runModelDir(run);
    const tokenizer = await loadTokenizer(modelDir);
    const { options: quant, notice: quantNotice } = runLoadQuant(run, opts, runDir);
    const quantOpts = checkpointQuantOptions(quant);
    const qgemm = baseKernel(opts.quantKernel, quantOpts.quantize?.scheme) === "qgemm";
    if (quantNotice) opts.onNotice?.(quantNotice);
    const ckpt = await loadCheckpoint(modelDir, { ...quantOpts, onHashProgress: opts.onHashProgress });
    const { g, m } = await buildRunGraph(runDir, run, ckpt, {
      onHashProgress: opts.onHashProgress,
      ...(qgemm ? { baseKernel: "qgemm" } : {}),
    });
    g.output("probs", m.probs);
    const fitted = fitMaxLength(
      opts.maxLength ?? run.maxLength,
      ckpt.config,
      specialTokenCount(tokenizer),
      opts.maxLength === undefined ? "the run's maxLength" : "maxLength",
    );
    if (fitted.notice) opts.onNotice?.(fitted.notice);
    const session = await Session.fromGraph(g, { ...sessionOptionsFor(g), ...opts });
    return new RunClassifier(
      runDir,
      run.labels,
      await readThresholds(runDir, run.labels),
      tokenizer,
      session,
      ckpt.config.family === "bert",
      fitted.maxLength,
      opts.batchSize ?? DEFAULT_BATCH_SIZE,
      [fitted.notice, quantNotice].filter((n): n is string => n !== undefined),
      { threads: opts.threads, device: opts.device },
      await readCalibration(runDir, run.labels),
      quantOpts.quantize
        ? {
            scheme: quantOpts.quantize.scheme,
            blockSize: blockSizeOf(quantOpts.quantize),
            ...(quantOpts.quantize.doubleQuant ? { doubleQuant: true } : {}),
            // Changes the probabilities, so it is part of identity() (resume checks).
            ...(qgemm ? { kernel: "qgemm" } : {}),
          }
        : null,
    );
  }

  /** How the base runs its linear layers (scheme, block size, kernel); eval.json records it. */
  get quantization(): BaseQuantization {
    const q = this.quant;
    if (!q) return { scheme: "none", blockSize: null, doubleQuant: false, kernel: null };
    const scheme = q.scheme as BaseQuantization["scheme"];
    return {
      scheme,
      blockSize: q.blockSize,
      doubleQuant: q.doubleQuant === true,
      kernel: scheme === "nf4" ? "matmulbnb4" : (q.kernel ?? "matmulnbits"),
    };
  }

  /** Probabilities per text (rows in input order, one column per label), calibrated when the run is. */
  async probs(texts: readonly string[], batchSize = this.batchSize): Promise<number[][]> {
    return (await this.score(texts, batchSize)).probs;
  }

  async predict(texts: string[], options: PredictOptions = {}): Promise<Scored[]> {
    const { probs, truncated } = await this.score(texts, options.batchSize ?? this.batchSize);
    return probs.map((p, i) => ({
      probs: p,
      decisions: decide(p, this.thresholds),
      ...(truncated[i] ? { truncated: true } : {}),
    }));
  }

  private async score(
    texts: readonly string[],
    batchSize: number,
  ): Promise<{ probs: number[][]; truncated: boolean[] }> {
    const { ids, truncated } = encodeTextsCapped(this.tokenizer, texts, this.maxLength);
    const { probs } = await scoreRows(this.session, ids, {
      padId: this.tokenizer.padId,
      withTokenTypes: this.withTokenTypes,
      batchSize,
    });
    return { probs: this.calibration ? applyCalibration(probs, this.calibration) : probs, truncated };
  }

  async close(): Promise<void> {
    await this.session.release();
    if (this.attributorLoad) await (await this.attributorLoad.catch(() => null))?.close();
  }

  /**
   * The run (its folder, config, calibration and adapter weights, hashed), the max length in use and,
   * when the base is quantized, how (a quantized base changes the probabilities).
   */
  async identity(): Promise<Record<string, unknown>> {
    const hash = createHash("sha256");
    const files = [
      RUN_FILES.config,
      RUN_FILES.calibration,
      join(RUN_FILES.adapter, "adapter_model.safetensors"),
    ];
    for (const f of files) {
      const file = join(this.runDir, f);
      if (existsSync(file)) hash.update(await readFile(file));
    }
    return {
      run: resolve(this.runDir),
      runSha256: hash.digest("hex"),
      maxLength: this.maxLength,
      ...(this.quant ? { quantize: this.quant } : {}),
    };
  }
}

/**
 * The kernel `quantKernel` asks for, checked: it chooses between the int8/int4 kernels, so on an
 * nf4 or float32 base (one kernel each) it is refused rather than ignored.
 */
function baseKernel(
  kernel: string | undefined,
  scheme: string | undefined,
): "matmulnbits" | "qgemm" | undefined {
  if (kernel === undefined) return undefined;
  if (kernel !== "matmulnbits" && kernel !== "qgemm")
    throw new Error(`--quant-kernel: unknown kernel "${kernel}" (expected matmulnbits or qgemm)`);
  if (scheme !== "int8" && scheme !== "int4")
    throw new Error(
      `--quant-kernel ${kernel} (quantKernel) runs an int8 or int4 base; this run loads ${scheme ?? "float32"}`,
    );
  return kernel;
}

/**
 * Loads a trained run directory as a {@link Classifier}: a LoRA run ({@link RunClassifier}) or a
 * tfidf-lr baseline run ({@link TfidfClassifier}; session options do not apply to it).
 * @example
 * const clf = await loadClassifier("outputs/my-model/2026-11-29/10-00-00");
 * const [r] = await clf.predict(["このアニメ最高！"]);
 * console.log(clf.labels.map((l, j) => `${l}: ${r.probs[j].toFixed(3)}`));
 */
export async function loadClassifier(
  runDir: string,
  opts: LoadClassifierOptions = {},
): Promise<TrainedClassifier> {
  const run = await readRunConfig(runDir);
  const baseline = isBaselineModel(run.model);
  if (baseline) refuseBaseOptions(opts); // no base: --quantize and --quant-kernel would be ignored
  // Whoever predicts with the run hears what its test evaluation found about its labels.
  if (opts.evalWarnings !== false)
    for (const w of await savedDegenerateWarnings(runDir))
      opts.onNotice?.(`this run's evaluation (eval.json): ${w}`);
  if (baseline) return TfidfClassifier.load(runDir, run, await readThresholds(runDir, run.labels));
  return RunClassifier.load(runDir, opts);
}
