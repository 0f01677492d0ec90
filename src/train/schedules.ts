// Learning-rate schedules, as pure functions of the step number.
//
// Each kind reproduces the lambda of Hugging Face transformers' `optimization.py` exactly (same
// formula, same order of floating-point operations), so a toxlora run follows the same learning-rate
// curve as the prototype's `Trainer`:
//
//   kind           transformers function                   multiplier of `base` at step s
//   linear         get_linear_schedule_with_warmup         s/W during warmup, then max(0, (T−s)/max(1, T−W))
//   cosine         get_cosine_schedule_with_warmup         s/W, then max(0, ½(1 + cos(π·2c·p))), p = (s−W)/max(1, T−W)
//   inverse_sqrt   get_inverse_sqrt_schedule               s/W, then 1/√((s + τ − W)/τ), τ = timescale
//   constant       get_constant_schedule_with_warmup       s/W, then 1
//
// (W = warmup steps, T = total steps, c = cycles (0.5 = one half-cosine), warmup divisions use max(1, W).)
//
// Step numbering follows torch's LambdaLR as driven by the Trainer: `step` is the number of optimizer
// updates already applied, so the first update uses `lrAt(0)` — which is 0 when there is a warmup —
// and the last of T updates uses `lrAt(T − 1)`.

/** The schedule kinds of `toxlora train --scheduler`. */
export const SCHEDULE_KINDS = ["linear", "cosine", "inverse_sqrt", "constant"] as const;
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];

/** Parameters of a learning-rate schedule. */
export interface ScheduleOptions {
  /** Peak learning rate (the optimizer's `lr`). */
  base: number;
  /** Total number of optimizer updates T (used by linear and cosine). */
  totalSteps: number;
  /** Number of warmup updates W (linear ramp from 0 to `base`). */
  warmupSteps: number;
  kind: ScheduleKind;
  /** Cosine only: number of waves; 0.5 (default) decays from `base` to 0 along a half cosine. */
  numCycles?: number;
  /**
   * inverse_sqrt only: time scale τ. Default as transformers: `warmupSteps`, or 10 000 when there is
   * no warmup (`timescale = num_warmup_steps or 10_000`).
   */
  timescale?: number;
}

function checkCount(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`${name} must be a non-negative integer, got ${value}`);
}

/**
 * The multiplier applied to `base` at `step` (the transformers `lr_lambda`).
 * @param step - number of optimizer updates already applied (0 for the first update)
 */
export function lrMultiplier(step: number, options: Omit<ScheduleOptions, "base">): number {
  const { totalSteps: T, warmupSteps: W, kind } = options;
  checkCount("step", step);
  checkCount("totalSteps", T);
  checkCount("warmupSteps", W);
  // Warmup: identical in every schedule (constant uses max(1.0, W), the same value for integers).
  if (step < W) return step / Math.max(1, W);
  switch (kind) {
    case "linear":
      return Math.max(0, (T - step) / Math.max(1, T - W));
    case "cosine": {
      const cycles = options.numCycles ?? 0.5;
      const progress = (step - W) / Math.max(1, T - W);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
    }
    case "inverse_sqrt": {
      const timescale = options.timescale ?? (W || 10_000);
      if (!(timescale > 0)) throw new Error(`timescale must be positive, got ${timescale}`);
      const shift = timescale - W;
      return 1 / Math.sqrt((step + shift) / timescale);
    }
    case "constant":
      return 1;
    default:
      throw new Error(
        `unknown schedule kind: ${String(kind)} (expected one of ${SCHEDULE_KINDS.join(", ")})`,
      );
  }
}

/**
 * The learning rate at `step`: `base × lrMultiplier(step)`.
 * @example
 * // The prototype's recipe: inverse-sqrt, warmup ratio 0.2, lr 1e-4, 107 updates.
 * const W = warmupStepsFromRatio(107, 0.2); // 22
 * lrAt(0, { base: 1e-4, totalSteps: 107, warmupSteps: W, kind: "inverse_sqrt" }); // 0
 * lrAt(22, { base: 1e-4, totalSteps: 107, warmupSteps: W, kind: "inverse_sqrt" }); // 1e-4
 */
export function lrAt(step: number, options: ScheduleOptions): number {
  return options.base * lrMultiplier(step, options);
}

/**
 * Warmup steps from a ratio, as transformers' `TrainingArguments.get_warmup_steps`:
 * `ceil(totalSteps × ratio)`.
 */
export function warmupStepsFromRatio(totalSteps: number, ratio: number): number {
  checkCount("totalSteps", totalSteps);
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`warmup ratio must be in [0, 1], got ${ratio}`);
  return Math.ceil(totalSteps * ratio);
}

/** Type guard for CLI parsing: is `name` a known schedule kind? */
export function isScheduleKind(name: string): name is ScheduleKind {
  return (SCHEDULE_KINDS as readonly string[]).includes(name);
}
