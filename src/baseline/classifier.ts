// A tfidf-lr run directory as a Classifier, for eval, predict, serve and tweets score.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { applyCalibration, type Calibration, readCalibration } from "../run/calibration.js";
import { decide } from "../run/output.js";
import type { RunConfig } from "../run/run-config.js";
import { RUN_FILES, type Scored, type TrainedClassifier } from "../run/types.js";
import { loadTfidfLr, TFIDF_LR_FILES, type TfidfLrModel } from "./model.js";

/** Where a tfidf-lr run keeps its model (see TFIDF_LR_FILES in ./model.ts). */
export const BASELINE_MODEL_DIR = "model";

export class TfidfClassifier implements TrainedClassifier {
  /** No transformer base, so nothing is quantized. */
  readonly quantization = null;

  private constructor(
    readonly runDir: string,
    readonly labels: string[],
    readonly thresholds: number[],
    readonly model: TfidfLrModel,
    /** The run's calibration (calibration.json), applied to every probability; null when none. */
    readonly calibration: Calibration | null = null,
  ) {}

  static async load(runDir: string, run: RunConfig, thresholds: number[]): Promise<TfidfClassifier> {
    const model = await loadTfidfLr(join(runDir, BASELINE_MODEL_DIR));
    if (model.labels.join() !== run.labels.join())
      throw new Error(
        `${runDir}: the model's labels [${model.labels}] differ from config.json's [${run.labels}]`,
      );
    const calibration = await readCalibration(runDir, run.labels);
    return new TfidfClassifier(runDir, run.labels, thresholds, model, calibration);
  }

  /** Probabilities per text (one column per label), calibrated when the run is. */
  async probs(texts: readonly string[]): Promise<number[][]> {
    const probs = this.model.probs(texts);
    return this.calibration ? applyCalibration(probs, this.calibration) : probs;
  }

  async predict(texts: string[]): Promise<Scored[]> {
    return (await this.probs(texts)).map((probs) => ({
      probs,
      decisions: decide(probs, this.thresholds),
    }));
  }

  async close(): Promise<void> {}

  /**
   * The run and a hash of its config, calibration and model files: a resumed output must come from
   * the same model.
   */
  async identity(): Promise<Record<string, unknown>> {
    const hash = createHash("sha256");
    const files = ["config.json", ...Object.values(TFIDF_LR_FILES).map((f) => join(BASELINE_MODEL_DIR, f))];
    for (const f of files) hash.update(`${f}\0`).update(await readFile(join(this.runDir, f)));
    const calibration = join(this.runDir, RUN_FILES.calibration);
    if (existsSync(calibration))
      hash.update(`${RUN_FILES.calibration}\0`).update(await readFile(calibration));
    return { run: resolve(this.runDir), runSha256: hash.digest("hex") };
  }
}
