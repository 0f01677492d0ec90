// The configuration of a tfidf-lr run: the LoRA trainer's data, split, balance, re-sampling,
// pos-weight, seed and calibration settings (same names, same meaning) plus the baseline's own.
// Saved in full as <run>/config.json's `train`.
import { z } from "zod";
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

export function resolveBaselineConfig(input: BaselineConfigInput): BaselineConfig {
  const r = BaselineConfigSchema.safeParse(input);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join(".") || "config"}: ${i.message}`).join("; ");
    throw new Error(`invalid tfidf-lr config: ${msg}`);
  }
  checkCalibrate(r.data, "tfidf-lr config");
  return r.data;
}
