// `toxlora train`: LoRA fine-tuning of a classifier (see src/train/trainer.ts), or with
// `--model tfidf-lr` the character n-gram TF-IDF + logistic regression baseline (src/baseline/).
import { type Command, InvalidArgumentError, Option } from "commander";
import {
  BASELINE_MODEL,
  type BaselineConfigInput,
  type BaseOnlyOptions,
  isBaselineModel,
} from "../baseline/config.js";
import type { TrainConfigInput } from "../run/config.js";
import type { ProgressMode } from "../run/progress.js";
import { train } from "../train/trainer.js";
import {
  addDatasetOptions,
  commaList,
  type DatasetFlags,
  fraction,
  integer,
  nonNegativeInt,
  positiveInt,
} from "./analyze.js";
import { addComputeOptions } from "./compute.js";
import { withInterrupt } from "./interrupt.js";
import { addQuantOptions, type QuantFlags, quantFromFlags } from "./quant.js";

const number = (v: string): number => {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError("expected a number");
  return n;
};

export interface TrainFlags extends DatasetFlags, QuantFlags {
  model: string;
  data: string;
  eval?: string;
  testRatio: number;
  validRatio: number;
  valid?: string;
  out?: string;
  head: "multilabel" | "per-label-softmax";
  loraR: number;
  loraAlpha: number;
  loraDropout: number;
  rslora?: boolean;
  targetModules: string;
  epochs: number;
  batchSize: number;
  gradAccum: number;
  lr: number;
  weightDecay: number;
  scheduler: "linear" | "cosine" | "inverse_sqrt" | "constant";
  warmupRatio: number;
  maxGradNorm: number;
  maxLength: number;
  seed: number;
  bootstrap: number;
  calibrate?: "temperature" | "platt";
  device: "cpu" | "cuda";
  threads?: number;
  balance?: string;
  resampleEachEpoch?: string;
  posWeight: string;
  earlyStopping: number;
  evalEvery: string;
  bestMetric: "macroF1" | "microF1" | "loss" | "macroPrAuc";
  bucketing: boolean;
  shuffle: boolean;
  gradientCheckpointing?: boolean | "full" | "selective";
  adapter?: string;
  resume?: boolean;
  quiet?: boolean;
  json?: boolean;
  ngram: [number, number];
  minDf: number;
  C: number;
  classWeight: "balanced" | "none";
  maxIter: number;
  tol: number;
}

/** "1,3" → [1, 3]. */
function ngramRange(v: string): [number, number] {
  const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(v);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > Number(m[2]))
    throw new InvalidArgumentError("expected min,max with 1 <= min <= max, e.g. 1,3");
  return [Number(m[1]), Number(m[2])];
}

/** Options that only a LoRA run uses, and those that only the tfidf-lr baseline uses. */
const LORA_ONLY = [
  "eval-every",
  "head",
  "lora-r",
  "lora-alpha",
  "lora-dropout",
  "rslora",
  "target-modules",
  "batch-size",
  "grad-accum",
  "lr",
  "weight-decay",
  "scheduler",
  "warmup-ratio",
  "max-grad-norm",
  "max-length",
  "device",
  "threads",
  "early-stopping",
  "best-metric",
  "bucketing",
  "shuffle",
  "gradient-checkpointing",
];
const BASELINE_ONLY = ["ngram", "min-df", "C", "class-weight", "max-iter", "tol"];

/** Flags given on the command line that the chosen model does not use: an error, not silence. */
function checkModelFlags(cmd: Command, baseline: boolean): void {
  const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const wrong = (baseline ? LORA_ONLY : BASELINE_ONLY).filter(
    (f) => cmd.getOptionValueSource(camel(f)) === "cli",
  );
  if (wrong.length > 0)
    throw new InvalidArgumentError(
      `${wrong.map((f) => `--${f}`).join(", ")} ${wrong.length > 1 ? "do" : "does"} not apply to ${baseline ? `--model ${BASELINE_MODEL}` : "a LoRA model"}`,
    );
}

/** The CLI flags as a tfidf-lr baseline config (the same object `train()` takes). */
export function baselineConfigFromFlags(f: TrainFlags): BaselineConfigInput & BaseOnlyOptions {
  const c = trainConfigFromFlags(f);
  return {
    ...quantFromFlags(f), // given, train() refuses them in one line (no base to quantize)
    model: BASELINE_MODEL,
    data: c.data,
    eval: c.eval,
    testRatio: c.testRatio,
    validRatio: c.validRatio,
    valid: c.valid,
    preset: c.preset,
    labels: c.labels,
    textField: c.textField,
    idField: c.idField,
    positive: c.positive,
    negative: c.negative,
    labelsField: c.labelsField,
    overallField: c.overallField,
    minVotes: c.minVotes,
    inputFormat: c.inputFormat,
    lenient: c.lenient,
    balance: c.balance,
    resampleEachEpoch: c.resampleEachEpoch,
    epochs: c.epochs,
    posWeight: c.posWeight,
    seed: c.seed,
    calibrate: c.calibrate,
    bootstrap: c.bootstrap,
    out: c.out,
    resume: c.resume,
    ngram: f.ngram,
    minDf: f.minDf,
    C: f.C,
    classWeight: f.classWeight,
    maxIter: f.maxIter,
    tol: f.tol,
  };
}

/** Flags whose value an `--adapter` decides: left out of the config unless given on the command line. */
const ADAPTER_DECIDES = ["head", "loraR", "loraAlpha", "loraDropout", "rslora", "targetModules"] as const;

/**
 * The CLI flags as a training config (the same object `train()` takes). `defaulted(flag)` tells
 * which flags were not given: those an adapter decides are then left to the adapter.
 */
export function trainConfigFromFlags(
  f: TrainFlags,
  defaulted: (flag: string) => boolean = () => false,
): TrainConfigInput {
  const cfg = fullConfigFromFlags(f);
  if (f.adapter) {
    const keys: Record<(typeof ADAPTER_DECIDES)[number], keyof TrainConfigInput> = {
      head: "head",
      loraR: "loraR",
      loraAlpha: "loraAlpha",
      loraDropout: "loraDropout",
      rslora: "useRslora",
      targetModules: "targetModules",
    };
    for (const flag of ADAPTER_DECIDES) if (defaulted(flag)) delete cfg[keys[flag]];
  }
  return cfg;
}

function fullConfigFromFlags(f: TrainFlags): TrainConfigInput {
  return {
    model: f.model,
    data: f.data,
    eval: f.eval,
    testRatio: f.testRatio,
    validRatio: f.validRatio,
    valid: f.valid,
    preset: f.preset,
    labels: f.labels,
    textField: f.textField,
    idField: f.idField,
    positive: f.positive,
    negative: f.negative,
    labelsField: f.labelsField,
    overallField: f.overallField,
    minVotes: f.minVotes,
    inputFormat: f.inputFormat,
    lenient: f.lenient ?? false,
    balance: f.balance,
    resampleEachEpoch: f.resampleEachEpoch,
    head: f.head,
    loraR: f.loraR,
    loraAlpha: f.loraAlpha,
    loraDropout: f.loraDropout,
    useRslora: f.rslora,
    targetModules:
      f.targetModules === "all-linear"
        ? "all-linear"
        : f.targetModules.includes(",")
          ? commaList(f.targetModules)
          : [f.targetModules],
    epochs: f.epochs,
    batchSize: f.batchSize,
    gradAccum: f.gradAccum,
    lr: f.lr,
    weightDecay: f.weightDecay,
    scheduler: f.scheduler,
    warmupRatio: f.warmupRatio,
    maxGradNorm: f.maxGradNorm,
    maxLength: f.maxLength,
    posWeight: f.posWeight,
    earlyStopping: f.earlyStopping,
    evalEvery: f.evalEvery === "epoch" ? "epoch" : positiveInt(f.evalEvery),
    bestMetric: f.bestMetric,
    seed: f.seed,
    bootstrap: f.bootstrap,
    calibrate: f.calibrate,
    device: f.device,
    threads: f.threads,
    out: f.out,
    resume: f.resume ?? false,
    bucketing: f.bucketing,
    shuffle: f.shuffle,
    gradientCheckpointing: f.gradientCheckpointing,
    adapter: f.adapter,
    ...quantFromFlags(f),
  };
}

/** The training flags (shared by `train` and `cv`). */
export function addTrainOptions(command: Command): Command {
  const cmd = command
    .requiredOption(
      "--model <dir|hub id|tfidf-lr>",
      `base model: a local Hugging Face folder or a Hub id; "${BASELINE_MODEL}" for the character n-gram TF-IDF + logistic regression baseline`,
    )
    .requiredOption("--data <file>", "training data (.jsonl, .json, .csv, .tsv)")
    .option("--eval <file>", "separate test file (default: hold out --test-ratio of --data)")
    .option("--test-ratio <r>", "share of --data held out for the final test", fraction, 0.3)
    .option("--valid-ratio <r>", "share held out for validation (thresholds, best checkpoint)", fraction, 0.1)
    .option(
      "--valid <file>",
      "separate validation file, e.g. split --valid's valid.jsonl (instead of --valid-ratio)",
    )
    .option("--out <dir>", "run directory (default outputs/<model>/<date>/<time>/)")
    .option(
      "--adapter <dir>",
      "start from this PEFT LoRA adapter (its rank, alpha, target modules and head; contradicting flags are refused)",
    )
    .addOption(
      new Option("--head <kind>", "classification head")
        .choices(["multilabel", "per-label-softmax"])
        .default("multilabel"),
    )
    .option("--lora-r <n>", "LoRA rank", positiveInt, 16)
    .option("--lora-alpha <x>", "LoRA alpha (scaling = alpha / r)", number, 32)
    .option("--lora-dropout <p>", "dropout on the LoRA input", fraction, 0.05)
    .option("--rslora", "rank-stabilised scaling alpha / sqrt(r)")
    .option(
      "--target-modules <list>",
      'modules that get LoRA: "all-linear", names (a,b) or a regex',
      "all-linear",
    )
    .option("--epochs <n>", "epochs", positiveInt, 1)
    .option("--batch-size <n>", "rows per batch", positiveInt, 8)
    .option("--grad-accum <n>", "batches per optimizer step", positiveInt, 1)
    .option("--lr <x>", "peak learning rate", number, 1e-4)
    .option("--weight-decay <x>", "AdamW weight decay", number, 0.01)
    .addOption(
      new Option("--scheduler <kind>", "learning-rate schedule")
        .choices(["linear", "cosine", "inverse_sqrt", "constant"])
        .default("inverse_sqrt"),
    )
    .option("--warmup-ratio <r>", "share of steps for linear warmup", number, 0.2)
    .option("--max-grad-norm <x>", "clip the global gradient norm (0 = off)", number, 1)
    .option("--max-length <n>", "tokens per text (longer texts are truncated)", positiveInt, 512)
    .option("--seed <n>", "random seed", integer, 42)
    .addOption(
      new Option(
        "--calibrate <method>",
        "calibrate probabilities per label on the validation split (thresholds tuned after it)",
      ).choices(["temperature", "platt"]),
    )
    .option(
      "--bootstrap <n>",
      "bootstrap resamples for the test split's 95% intervals (0 = off)",
      nonNegativeInt,
      1000,
    )
    .option("--balance <strategy>", "balance the training split once (a `toxlora balance` strategy)")
    .option("--resample-each-epoch <strategy>", "draw a fresh balanced training set every epoch")
    .option("--pos-weight <spec>", "class weights for BCE: auto | none | a=2,b=3", "none")
    .option(
      "--early-stopping <patience>",
      "stop after this many evaluations without improvement (0 = off)",
      integer,
      0,
    )
    .option(
      "--eval-every <steps|epoch>",
      "evaluate on the validation split every N steps or each epoch",
      "epoch",
    )
    .addOption(
      new Option("--best-metric <m>", "metric that picks the kept checkpoint")
        .choices(["macroF1", "microF1", "loss", "macroPrAuc"])
        .default("macroF1"),
    )
    .option("--no-bucketing", "plain batches instead of length-bucketed ones")
    .option("--no-shuffle", "rows in file order, the same every epoch (no shuffling)")
    .addOption(
      new Option(
        "--gradient-checkpointing [mode]",
        "recompute each layer in the backward pass instead of keeping its activations. full (the flag alone): all of it, least memory, one more forward pass of time; selective (default with --quantize): keep the products with the frozen weights, recompute the rest",
      )
        .choices(["full", "selective"])
        .preset("full"),
    )
    .option("--no-gradient-checkpointing", "keep every layer's activations (default without --quantize)")
    .option("--ngram <min,max>", `${BASELINE_MODEL}: character n-gram lengths`, ngramRange, [1, 3])
    .option(
      "--min-df <n>",
      `${BASELINE_MODEL}: keep n-grams found in at least n training texts`,
      positiveInt,
      2,
    )
    .option("--C <x>", `${BASELINE_MODEL}: inverse L2 regularisation strength (scikit-learn's C)`, number, 4)
    .addOption(
      new Option("--class-weight <w>", `${BASELINE_MODEL}: per-label class weighting`)
        .choices(["balanced", "none"])
        .default("balanced"),
    )
    .option("--max-iter <n>", `${BASELINE_MODEL}: L-BFGS iterations per label at most`, positiveInt, 2000)
    .option("--tol <x>", `${BASELINE_MODEL}: L-BFGS stops when max|gradient| <= tol`, number, 1e-4)
    .option("--resume", "continue the interrupted run in --out")
    .option("--quiet", "no progress output")
    .option("--json", "progress as JSON lines on stdout");
  return addComputeOptions(addQuantOptions(addDatasetOptions(cmd)));
}

/** The parsed training flags as the config `train()` takes (a LoRA or a baseline config). */
export function configFromTrainFlags(
  cmd: Command,
  flags: TrainFlags,
): TrainConfigInput | BaselineConfigInput {
  const defaulted = (flag: string) => cmd.getOptionValueSource(flag) !== "cli";
  const baseline = isBaselineModel(flags.model);
  checkModelFlags(cmd, baseline);
  if (flags.valid !== undefined && !defaulted("validRatio"))
    throw new InvalidArgumentError(
      "--valid <file> and --valid-ratio both name the validation split; give one",
    );
  return baseline ? baselineConfigFromFlags(flags) : trainConfigFromFlags(flags, defaulted);
}

export function register(program: Command): void {
  const cmd = addTrainOptions(
    program
      .command("train")
      .description(
        `fine-tune a model with LoRA into a multi-label classifier (or fit the ${BASELINE_MODEL} baseline) and write a run directory`,
      ),
  );
  cmd.action(async (flags: TrainFlags) => {
    const mode: ProgressMode = flags.quiet ? "quiet" : flags.json ? "json" : "auto";
    const config = configFromTrainFlags(cmd, flags);
    const r = await withInterrupt("stopping after this step; `--resume` continues", (signal) =>
      train(config, { progress: mode, signal }),
    );
    if (flags.json)
      process.stdout.write(
        `${JSON.stringify({ event: "done", runDir: r.runDir, macroF1: r.eval.macroF1, interrupted: r.interrupted })}\n`,
      );
    // The path alone on stdout, also with --quiet: `run=$(toxlora train … --quiet)` works.
    else process.stdout.write(`${r.runDir}\n`);
    if (r.interrupted) process.exitCode = 130;
  });
}
