// The training configuration: one object, validated with zod, saved in full as <run>/config.json.
// Defaults reproduce the Python prototype's recipe except where the README
// justifies a different choice.
import { z } from "zod";
import { QUANT_SCHEMES } from "../quant/weights.js";

export const TrainConfigSchema = z.object({
  /** Model folder or Hugging Face Hub id. */
  model: z.string().min(1),
  /** Training data file (JSONL/CSV/TSV). */
  data: z.string().min(1),
  /** Separate evaluation file; when absent, `testRatio` of `data` is held out. */
  eval: z.string().optional(),
  testRatio: z.number().min(0).max(0.9).default(0.3),
  /** Share of the data held out for validation (threshold tuning, early stopping, best checkpoint). */
  validRatio: z.number().min(0).max(0.5).default(0.1),
  /** Separate validation file (e.g. `split --valid`'s valid.jsonl); replaces `validRatio`. */
  valid: z.string().optional(),
  /** Label schema: a preset name or explicit fields. */
  preset: z.string().optional(),
  labels: z.array(z.string()).optional(),
  textField: z.string().optional(),
  idField: z.string().optional(),
  positive: z.array(z.string()).optional(),
  negative: z.array(z.string()).optional(),
  labelsField: z.string().optional(),
  overallField: z.string().optional(),
  /** inspection-ai preset: votes needed for a label. */
  minVotes: z.number().int().positive().optional(),
  inputFormat: z.enum(["jsonl", "json", "csv", "tsv"]).optional(),
  /** Skip malformed rows instead of failing. */
  lenient: z.boolean().default(false),
  /** Balance strategy applied to the training split once before training (e.g. "prototype"). */
  balance: z.string().optional(),
  /** Balance strategy re-drawn from the training split at every epoch with a fresh seed. */
  resampleEachEpoch: z.string().optional(),

  /**
   * A PEFT LoRA adapter folder to start from (its LoRA factors and saved head). Its
   * adapter_config.json decides rank, alpha, rsLoRA, target modules and (by its saved head) the
   * head kind; given values that differ are refused.
   */
  adapter: z.string().min(1).optional(),
  head: z.enum(["multilabel", "per-label-softmax"]).default("multilabel"),
  loraR: z.number().int().positive().default(16),
  loraAlpha: z.number().positive().default(32),
  loraDropout: z.number().min(0).max(0.9).default(0.05),
  useRslora: z.boolean().default(false),
  targetModules: z.union([z.literal("all-linear"), z.array(z.string()), z.string()]).default("all-linear"),

  epochs: z.number().int().positive().default(1),
  batchSize: z.number().int().positive().default(8),
  gradAccum: z.number().int().positive().default(1),
  lr: z.number().positive().default(1e-4),
  weightDecay: z.number().min(0).default(0.01),
  scheduler: z.enum(["linear", "cosine", "inverse_sqrt", "constant"]).default("inverse_sqrt"),
  warmupRatio: z.number().min(0).max(1).default(0.2),
  maxGradNorm: z.number().min(0).default(1.0),
  maxLength: z.number().int().positive().default(512),
  /** Class weighting for the multilabel BCE: "auto" (neg/pos per label), "none", or "a=2,b=3". */
  posWeight: z.string().default("none"),
  earlyStopping: z.number().int().min(0).default(0),
  /** "epoch" or a number of optimizer steps. */
  evalEvery: z.union([z.literal("epoch"), z.number().int().positive()]).default("epoch"),
  /** Metric that picks the kept checkpoint. */
  bestMetric: z.enum(["macroF1", "microF1", "loss", "macroPrAuc"]).default("macroF1"),
  seed: z.number().int().default(42),
  /** Calibrate the probabilities per label on the validation split (thresholds tuned after it). */
  calibrate: z.enum(["temperature", "platt"]).optional(),
  /** Bootstrap resamples for the test split's 95% intervals (0 = none); seeded by `seed`. */
  bootstrap: z.number().int().min(0).default(1000),
  device: z.enum(["cpu", "cuda"]).default("cpu"),
  /** Frozen base quantized (QLoRA-style): none, int8, int4 or nf4; see src/quant/. */
  quantize: z.enum(QUANT_SCHEMES).default("none"),
  quantBlockSize: z.number().int().positive().optional(),
  /** nf4: quantize the absmax values too (bitsandbytes' double quantization). */
  doubleQuant: z.boolean().default(false),
  /** Keep the quantized weights in toxlora's on-disk cache. */
  quantCache: z.boolean().default(true),
  /**
   * Recompute each transformer layer in the backward pass instead of keeping its activations
   * (gradient checkpointing): true or "full" recomputes all of it, "selective" keeps the products
   * with frozen weights. Default: "selective" with a quantized base, off with a float32 one.
   */
  gradientCheckpointing: z.union([z.boolean(), z.enum(["full", "selective"])]).optional(),
  threads: z.number().int().positive().optional(),
  /** Run directory; default outputs/<model>/<date>/<time>/. */
  out: z.string().optional(),
  resume: z.boolean().default(false),
  /** Length-bucketed batching (off = plain batches). */
  bucketing: z.boolean().default(true),
  /** Shuffle rows every epoch (off = file order, the same every epoch). */
  shuffle: z.boolean().default(true),
});

export type TrainConfig = z.infer<typeof TrainConfigSchema>;
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;

/**
 * How a run recomputes its layers in the backward pass: as asked (true = "full"), else
 * "selective" when the base is quantized (measured on llm-jp-3-1.8b's shape: within the memory a
 * quantized base is for, at little more step time than float32; "full" costs a third more) and
 * not at all with a float32 base.
 */
export function usesGradientCheckpointing(
  cfg: Pick<TrainConfig, "gradientCheckpointing" | "quantize">,
): "full" | "selective" | false {
  const asked = cfg.gradientCheckpointing;
  if (asked === true) return "full";
  if (asked !== undefined) return asked;
  return cfg.quantize !== "none" ? "selective" : false;
}

/** Validates a user config and fills defaults; errors name the offending field. */
export function resolveTrainConfig(input: TrainConfigInput): TrainConfig {
  const r = TrainConfigSchema.safeParse(input);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join(".") || "config"}: ${i.message}`).join("; ");
    throw new Error(`invalid training config: ${msg}`);
  }
  checkCalibrate(r.data, "training config");
  return r.data;
}

/** `--calibrate` fits on the validation split: refuses a config that has none (LoRA and tfidf-lr). */
export function checkCalibrate(cfg: Pick<TrainConfig, "calibrate" | "validRatio">, what: string): void {
  if (cfg.calibrate && cfg.validRatio === 0)
    throw new Error(`invalid ${what}: calibrate: --calibrate ${cfg.calibrate} needs --valid-ratio > 0`);
}
