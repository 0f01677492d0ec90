// The configuration of a tfidf-lr run: the LoRA trainer's data, split, balance, re-sampling,
// pos-weight, seed and calibration settings (same names, same meaning) plus the baseline's own.
// Saved in full as <run>/config.json's `train`.
import { z } from "zod";
import type { QuantLoadOptions } from "../quant/weights.js";
import { checkCalibrate, TrainConfigSchema } from "../run/config.js";

/** The `model` value that selects the baseline instead of a pretrained transformer. */
export const BASELINE_MODEL = "tfidf-lr";

export function isBaselineModel(model: unknown): boolean {
  return model === BASELINE_MODEL;
}

export const BaselineConfigSchema = TrainConfigSchema.pick({
  data: true,
  eval: true,
  testRatio: true,
  validRatio: true,
  valid: true,
  preset: true,
  labels: true,
  textField: true,
  idField: true,
  positive: true,
  negative: true,
  labelsField: true,
  overallField: true,
  minVotes: true,
  inputFormat: true,
  lenient: true,
  balance: true,
  resampleEachEpoch: true,
  epochs: true,
  posWeight: true,
  seed: true,
  calibrate: true,
  bootstrap: true,
  out: true,
  resume: true,
}).extend({
  model: z.literal(BASELINE_MODEL),
  /** Smallest and largest character n-gram (code points). */
  ngram: z
    .tuple([z.number().int().positive(), z.number().int().positive()])
    .refine(([a, b]) => a <= b, "min must not exceed max")
    .default([1, 3]),
  /** A character n-gram must occur in at least this many training texts. */
  minDf: z.number().int().positive().default(2),
  /** Inverse L2 regularisation strength (scikit-learn's C). */
  C: z.number().positive().default(4),
  classWeight: z.enum(["balanced", "none"]).default("balanced"),
  /** L-BFGS iteration limit per label. */
  maxIter: z.number().int().positive().default(2000),
  /** L-BFGS gradient tolerance, max|∇f| (scikit-learn's tol). */
  tol: z.number().positive().default(1e-4),
});

export type BaselineConfig = z.infer<typeof BaselineConfigSchema>;
export type BaselineConfigInput = z.input<typeof BaselineConfigSchema>;

/**
 * Options of a transformer base that reach a tfidf-lr run from the shared flags or a LoRA config
 * (train, eval, predict, serve, tweets score, worker); set, they are refused by
 * {@link refuseBaseOptions}, not ignored.
 */
export interface BaseOnlyOptions extends QuantLoadOptions {
  quantKernel?: string;
  gradientCheckpointing?: boolean | "full" | "selective";
}

/**
 * One line naming every base-only option set for a tfidf-lr model (which has no transformer base
 * to quantize or recompute). Their defaults (`quantize: "none"`, no double quantization, the
 * cache on, no checkpointing) pass.
 */
export function refuseBaseOptions(o: BaseOnlyOptions): void {
  const given: string[] = [];
  if (o.quantize !== undefined && o.quantize !== "none") given.push(`--quantize ${o.quantize} (quantize)`);
  if (o.quantBlockSize !== undefined) given.push(`--quant-block-size ${o.quantBlockSize} (quantBlockSize)`);
  if (o.doubleQuant === true) given.push("--double-quant (doubleQuant)");
  if (o.quantCache === false) given.push("--no-quant-cache (quantCache: false)");
  if (o.quantKernel !== undefined) given.push(`--quant-kernel ${o.quantKernel} (quantKernel)`);
  if (given.length > 0)
    throw new Error(
      `${given.join(", ")}: a ${BASELINE_MODEL} model has no transformer base to quantize; leave ${given.length > 1 ? "them" : "it"} out`,
    );
  if (o.gradientCheckpointing !== undefined && o.gradientCheckpointing !== false)
    throw new Error(
      `--gradient-checkpointing (gradientCheckpointing): a ${BASELINE_MODEL} model has no transformer layers to recompute; leave it out`,
    );
}

export function resolveBaselineConfig(input: BaselineConfigInput & BaseOnlyOptions): BaselineConfig {
  refuseBaseOptions(input);
  const r = BaselineConfigSchema.safeParse(input);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join(".") || "config"}: ${i.message}`).join("; ");
    throw new Error(`invalid tfidf-lr config: ${msg}`);
  }
  checkCalibrate(r.data, "tfidf-lr config");
  return r.data;
}
