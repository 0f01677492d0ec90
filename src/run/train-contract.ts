// What every trainer (LoRA fine-tuning in src/train/, the tf-idf baseline in src/baseline/) takes
// and returns, and where its run directory goes by default.
import { basename, join } from "node:path";
import type { DegenerateLabel } from "./label-checks.js";
import type { EvalReport } from "./metrics.js";
import type { ProgressMode } from "./progress.js";

export interface TrainOptions {
  /** Progress display (default "auto": a bar on a terminal, lines otherwise). */
  progress?: ProgressMode;
  /** Stop after the current step (the run stays resumable). */
  signal?: AbortSignal;
  /**
   * Never hold the training and evaluation sessions at once (they are swapped for each
   * evaluation). Default: on when the model's frozen weights exceed 1.5 GB.
   */
  lowMemory?: boolean;
}

export interface TrainResult {
  runDir: string;
  labels: string[];
  /** Test-split evaluation at the tuned thresholds. */
  eval: EvalReport;
  /** Test-split evaluation at 0.5. */
  evalAt05: EvalReport;
  thresholds: number[];
  /** Labels the model has not learned (eval.json `degenerate`, src/run/label-checks.ts); {} when none. */
  degenerate: Record<string, DegenerateLabel>;
  bestStep: number;
  steps: number;
  trainSeconds: number;
  /** True when the run stopped early because of `signal`. */
  interrupted: boolean;
}

/** Default run directory: outputs/<model>/<date>/<time>/ as the prototype laid them out. */
export function defaultRunDir(model: string, now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const date = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  const time = `${pad(now.getHours())}-${pad(now.getMinutes())}-${pad(now.getSeconds())}`;
  return join("outputs", basename(model.replace(/\/+$/, "")), date, time);
}
