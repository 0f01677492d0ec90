// The one output shape of a scored text, written by `predict` (and the queue), `serve`,
// `tweets score` and the evaluation predictions of `train`/`eval`:
//   probs      {label: probability}
//   decisions  {label: true/false}  (probs[label] >= the run's threshold for it)
//   flagged    [labels whose decision is true, in label order]
// Ground truth, where a row has it, is `truth` {label: 0/1} beside these fields.

/** The per-label fields of one scored text. */
export interface ScoredFields {
  probs: Record<string, number>;
  decisions: Record<string, boolean>;
  flagged: string[];
}

/** `probs[j]` and `decisions[j]` belong to `labels[j]`. */
export function scoredFields(
  labels: readonly string[],
  probs: readonly number[],
  decisions: readonly boolean[],
): ScoredFields {
  return {
    probs: Object.fromEntries(labels.map((l, j) => [l, probs[j] as number])),
    decisions: Object.fromEntries(labels.map((l, j) => [l, decisions[j] === true])),
    flagged: labels.filter((_, j) => decisions[j] === true),
  };
}

/** Decisions at per-label thresholds: the rule of `Scored.decisions` (src/run/types.ts). */
export function decide(probs: readonly number[], thresholds: readonly number[]): boolean[] {
  return probs.map((p, j) => p >= (thresholds[j] as number));
}
