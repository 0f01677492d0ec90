// Shared contract between the trainer (which writes run directories), the predictor, `tweets score`,
// `report` and `serve`. Keep it small and stable.

/** One scored text. `probs[j]` is P(label j); `decisions[j]` is probs[j] >= thresholds[j]. */
export interface Scored {
  probs: number[];
  decisions: boolean[];
  /** True when the text was longer than the classifier reads (max length) and was cut. */
  truncated?: boolean;
}

/** Per-call options of {@link Classifier.predict}. */
export interface PredictOptions {
  batchSize?: number;
}

/** A trained classifier loaded from a run directory (see `loadClassifier`). */
export interface Classifier {
  /** Label names, in output order. */
  readonly labels: string[];
  /** Per-label decision thresholds (tuned on validation data when the run has them, else 0.5). */
  readonly thresholds: number[];
  /**
   * Score a batch of texts; result is in input order. `batchSize` overrides the rows per forward
   * pass (the queue's coordinator sets it so every worker scores exactly like `predict`).
   */
  predict(texts: string[], options?: PredictOptions): Promise<Scored[]>;
  /** Release native resources. */
  close(): Promise<void>;
  /**
   * What makes this classifier's output what it is (e.g. the run and a hash of its adapter), for
   * checking that a resumed output was written by the same classifier. Optional.
   */
  identity?(): Promise<Record<string, unknown>>;
}

/** How a classifier's transformer base runs its linear layers (eval.json's `quantization`). */
export interface BaseQuantization {
  /** "none" for a float32 base. */
  scheme: "none" | "int8" | "int4" | "nf4";
  /** Values per quantization block (null: float32). */
  blockSize: number | null;
  /** nf4: the absmax values quantized too. */
  doubleQuant: boolean;
  /** onnxruntime kernel of the quantized linear layers (null: float32's MatMul). */
  kernel: "matmulbnb4" | "matmulnbits" | "qgemm" | null;
}

/** A classifier loaded from a run directory: a LoRA run's or a tfidf-lr baseline's. */
export interface TrainedClassifier extends Classifier {
  readonly runDir: string;
  /** How the base runs; null for a model without a transformer base (tfidf-lr). */
  readonly quantization: BaseQuantization | null;
  /** Probabilities per text (rows in input order, one column per label). */
  probs(texts: readonly string[]): Promise<number[][]>;
}

/**
 * Files of a run directory, relative to it (written by src/train/trainer.ts).
 * - config.json       {toxloraVersion, labels, model, modelDir, family, head, maxLength, padTokenId,
 *                     posWeight, train: <the full resolved TrainConfig>}
 * - metrics.jsonl     one JSON object per line: {"type":"step",step,epoch,loss,lr,gradNorm,tokens,
 *                     paddedTokens,tokensPerS}, {"type":"eval",split:"valid",step,epoch,loss,macroF1,
 *                     microF1,macroPrAuc,perLabel:{<label>:{f1,precision,recall,prAuc,rocAuc}}} or
 *                     {"type":"epoch",epoch,rows,ids:[...],labelRates:{...}} for each epoch's (re-sampled) set
 * - eval.json         test split: {split,rows,loss,at05: EvalReport,tuned: EvalReport,thresholds,bestStep,
 *                     steps,trainSeconds,degenerate} (EvalReport: src/run/metrics.ts; degenerate: labels
 *                     the model has not learned, src/run/label-checks.ts)
 * - thresholds.json   {"labels":[...],"thresholds":[...],"tunedOn":"valid"|null} (tuned on calibrated
 *                     probabilities when the run is calibrated)
 * - calibration.json  only with `--calibrate`: per-label scale and bias of the logit, fitted on the
 *                     validation split (Calibration, src/run/calibration.ts); every consumer of
 *                     the run's probabilities applies it
 * - manifest.json     data files with sha256, split ids, per-split label rates (src/run/data.ts)
 * - adapter/          PEFT adapter (adapter_config.json + adapter_model.safetensors) of the best step
 * - predictions/eval.jsonl  per test row: {id,text,truth:{..0/1},probs,decisions,flagged} (src/run/output.ts;
 *                     used by report)
 * - log.csv, log_tuned.csv  the prototype's per-label table at 0.5 and at the tuned thresholds
 * - checkpoint/       state for --resume
 * - model/            a tfidf-lr baseline run's model instead of adapter/ (src/baseline/model.ts)
 */
export const RUN_FILES = {
  config: "config.json",
  metrics: "metrics.jsonl",
  eval: "eval.json",
  thresholds: "thresholds.json",
  calibration: "calibration.json",
  manifest: "manifest.json",
  adapter: "adapter",
  evalPredictions: "predictions/eval.jsonl",
} as const;
