// Shared contract between the trainer (which writes run directories), the predictor, `tweets score`,
// `report` and `serve`. Keep it small and stable.

/** One scored text. `probs[j]` is P(label j); `decisions[j]` is probs[j] >= thresholds[j]. */
export interface Scored {
  probs: number[];
  decisions: boolean[];
}

/** A trained classifier loaded from a run directory (see `loadClassifier`). */
export interface Classifier {
  /** Label names, in output order. */
  readonly labels: string[];
  /** Per-label decision thresholds (tuned on validation data when the run has them, else 0.5). */
  readonly thresholds: number[];
  /** Score a batch of texts; result is in input order. */
  predict(texts: string[]): Promise<Scored[]>;
  /** Release native resources. */
  close(): Promise<void>;
}

/**
 * Files of a run directory, relative to it.
 * - config.json       full resolved training config (incl. `labels`, `model`, `toxloraVersion`)
 * - metrics.jsonl     one JSON object per line: {"type":"step",step,epoch,loss,lr,tokensPerS} or
 *                     {"type":"eval",step,epoch,loss,perLabel:{<label>:{f1,precision,recall,...}},macroF1,microF1}
 *                     or {"type":"epoch",epoch,ids:[...],labelRates:{...}} for each epoch's (re-sampled) set
 * - eval.json         final evaluation (see src/train/metrics.ts `EvalReport`)
 * - thresholds.json   {"labels":[...],"thresholds":[...]}
 * - manifest.json     data files with sha256, split ids
 * - adapter/          PEFT adapter (adapter_config.json + adapter_model.safetensors)
 * - predictions/eval.jsonl  per eval row: {id,text,labels:{..0/1},probs:{..}} (used by report)
 */
export const RUN_FILES = {
  config: "config.json",
  metrics: "metrics.jsonl",
  eval: "eval.json",
  thresholds: "thresholds.json",
  manifest: "manifest.json",
  adapter: "adapter",
  evalPredictions: "predictions/eval.jsonl",
} as const;
