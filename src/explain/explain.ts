// `explain(classifier, texts, { labels, method, steps })`: which stretches of each post made each
// label's score. Attributions of the label logit (src/explain/attribute.ts) are summed over the
// tokens of each stretch of raw text the tokenizer reports (Tokenizer.encodeWithOffsets +
// mergeSpans), so they land on the post's own characters and still add up to logit − baselineLogit.
//
// @example
// const clf = await loadClassifier("outputs/run");
// const [e] = await explain(clf, ["このアニメ最高！"], { labels: ["obscene"] });
// for (const t of e.tokens) console.log(t.text, t.attribution.toFixed(3));

import type { Classifier } from "../run/types.js";
import { mergeSpans } from "../tokenizers/offsets.js";
import type { Tokenizer } from "../tokenizers/tokenizer.js";
import type { AttributionMethod, Attributor, IntegrationRule } from "./attribute.js";

/** A classifier whose scores can be explained (a transformer run: see RunClassifier). */
export interface Explainable extends Classifier {
  readonly tokenizer: Tokenizer;
  readonly maxLength: number;
  attributor(): Promise<Attributor>;
}

export interface ExplainOptions {
  /** Labels to explain (default: all of the run's). */
  labels?: readonly string[];
  /** "ig" (integrated gradients, default) or "grad-x-input" (one gradient: fast, not complete). */
  method?: AttributionMethod;
  /** IG integration steps (default 32), batched into one graph run. */
  steps?: number;
  /** IG quadrature (default "gauss-legendre"). */
  rule?: IntegrationRule;
  /** Token limit (default: the classifier's max length); the rest of a longer text is not explained. */
  maxLength?: number;
  /** Called after each text. */
  onProgress?: (done: number, total: number) => void;
}

/** One stretch of the raw text and its share of the label's logit. */
export interface ExplainedSpan {
  /** [start, end) in UTF-16 code units: `text.slice(start, end)`. */
  start: number;
  end: number;
  text: string;
  attribution: number;
}

/** One text and one label. */
export interface Explanation {
  /** Index of the text in the input. */
  index: number;
  text: string;
  label: string;
  prob: number;
  logit: number;
  /** The logit with every token's embedding replaced by the pad token's (special tokens kept). */
  baselineLogit: number;
  /** |Σ attribution − (logit − baselineLogit)| / max(1e-6, |logit − baselineLogit|). */
  completenessError: number;
  method: AttributionMethod;
  /** Stretches of the text in order, never overlapping; whitespace between them is not attributed. */
  tokens: ExplainedSpan[];
  /** The text had more tokens than maxLength: only its first `explainedChars` characters are explained. */
  truncated: boolean;
  explainedChars: number;
}

/** A problem with what was asked (empty text, unknown label, not a transformer run). */
export class ExplainInputError extends Error {}

export function isExplainable(c: Classifier): c is Explainable {
  const x = c as Partial<Explainable>;
  return typeof x.attributor === "function" && x.tokenizer !== undefined;
}

/** Label indices for `labels` (all when undefined); an unknown label is an ExplainInputError. */
export function resolveLabels(all: readonly string[], labels?: readonly string[]): number[] {
  if (!labels || labels.length === 0) return all.map((_, j) => j);
  return labels.map((l) => {
    const j = all.indexOf(l);
    if (j < 0)
      throw new ExplainInputError(`label "${l}" is not one of this run's labels (${all.join(", ")})`);
    return j;
  });
}

/** Attributions of each text for each requested label: see {@link Explanation}. */
export async function explain(
  classifier: Classifier,
  texts: readonly string[],
  opts: ExplainOptions = {},
): Promise<Explanation[]> {
  if (!isExplainable(classifier)) {
    throw new ExplainInputError(
      "explain needs a transformer run (token attributions come from the model's gradients); this classifier has none",
    );
  }
  const labels = resolveLabels(classifier.labels, opts.labels);
  texts.forEach((t, i) => {
    if (typeof t !== "string" || t.trim() === "") {
      throw new ExplainInputError(`text ${i + 1} is empty: there is nothing to explain`);
    }
  });
  const method = opts.method ?? "ig";
  const att = await classifier.attributor();
  const out: Explanation[] = [];
  for (const [index, text] of texts.entries()) {
    const enc = classifier.tokenizer.encodeWithOffsets(text, {
      maxLength: opts.maxLength ?? classifier.maxLength,
    });
    const a = await att.attribute(enc.ids, {
      method,
      steps: opts.steps,
      rule: opts.rule,
      keep: enc.offsets.map((o) => o === null),
    });
    const groups = mergeSpans(enc.offsets);
    const explainedChars = groups.at(-1)?.end ?? 0;
    for (const j of labels) {
      const tokens = groups.map((g) => ({
        start: g.start,
        end: g.end,
        text: text.slice(g.start, g.end),
        attribution: g.tokens.reduce((s, t) => s + a.attributions[j][t], 0),
      }));
      const total = a.attributions[j].reduce((s, v) => s + v, 0);
      const diff = a.logits[j] - a.baselineLogits[j];
      out.push({
        index,
        text,
        label: classifier.labels[j],
        prob: 1 / (1 + Math.exp(-a.logits[j])),
        logit: a.logits[j],
        baselineLogit: a.baselineLogits[j],
        completenessError: Math.abs(total - diff) / Math.max(1e-6, Math.abs(diff)),
        method,
        tokens,
        truncated: enc.truncated,
        explainedChars,
      });
    }
    opts.onProgress?.(index + 1, texts.length);
  }
  return out;
}
