// The report's "why?" for its worst errors: per label, the evaluation rows scored most confidently
// wrong (the highest-probability false positives and the lowest-probability false negatives), each
// shown with its token attributions (src/explain/) drawn as on the serve page. The run's model is
// loaded only when there is something to explain, and closed afterwards.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { isBaselineModel } from "../baseline/config.js";
import { type Explanation, explain, isExplainable } from "../explain/explain.js";
import { HIGHLIGHT_CSS, HIGHLIGHT_LEGEND, highlightHtml } from "../explain/highlight.js";
import { type Html, html, num } from "../html/html.js";
import { resolveModel } from "../io/hub.js";
import { numel, openCheckpoint } from "../io/safetensors.js";
import type { EvalPrediction, RunData } from "./run.js";

/**
 * Above this many base-model parameters the report does not explain by default: an IG run costs
 * about 2 × steps forward passes per label, ~1 minute per post for BERT-base (110 M) on 2 cores.
 */
export const EXPLAIN_BY_DEFAULT_MAX_PARAMS = 30_000_000;

export interface ExplainErrorsOptions {
  /** False positives and false negatives explained per label, each (0 turns the section off). */
  perKind: number;
  /**
   * Set when perKind is the default, not asked for: a base model with more parameters than this
   * is not loaded, and a note says how to ask (default {@link EXPLAIN_BY_DEFAULT_MAX_PARAMS}).
   */
  maxParams?: number;
  /** Integrated-gradients steps (default 32). */
  steps?: number;
  /** CPU threads of the model session. */
  threads?: number;
  onProgress?: (message: string) => void;
}

/** One misclassified row to explain. */
export interface ErrorCase {
  kind: "FP" | "FN";
  id: string;
  text: string;
  /** The run's probability for the label (from its evaluation predictions). */
  score: number;
}

/** Per label: its worst false positives (highest score first) then false negatives (lowest first). */
export function errorCases(
  predictions: readonly EvalPrediction[],
  label: string,
  threshold: number,
  perKind: number,
): ErrorCase[] {
  const fp: ErrorCase[] = [];
  const fn: ErrorCase[] = [];
  for (const p of predictions) {
    const score = p.probs[label] as number;
    const truth = p.truth[label];
    if (score >= threshold && truth === 0) fp.push({ kind: "FP", id: p.id, text: p.text, score });
    if (score < threshold && truth === 1) fn.push({ kind: "FN", id: p.id, text: p.text, score });
  }
  fp.sort((a, b) => b.score - a.score || a.id.localeCompare(b.id));
  fn.sort((a, b) => a.score - b.score || a.id.localeCompare(b.id));
  return [...fp.slice(0, perKind), ...fn.slice(0, perKind)];
}

/** What the report shows: per label its cases with their explanations, or why there are none. */
export interface ExplainedErrors {
  cases: { case: ErrorCase; explanation: Explanation | null }[][];
  /** Why the cases have no highlights (baseline run, model not loadable); null when they have. */
  note: string | null;
}

/** Chooses the cases and explains them with the run's model (loaded here, only when needed). */
export async function explainErrors(run: RunData, opts: ExplainErrorsOptions): Promise<ExplainedErrors> {
  const chosen = run.labels.map((l, j) =>
    errorCases(run.predictions, l, run.thresholds[j] as number, opts.perKind),
  );
  const bare = (note: string | null): ExplainedErrors => ({
    cases: chosen.map((cs) => cs.map((c) => ({ case: c, explanation: null }))),
    note,
  });
  if (chosen.every((cs) => cs.length === 0)) return bare(null);
  if (isBaselineModel(run.config.model)) {
    return bare(
      "This is a TF-IDF + logistic regression baseline run: it has no gradients to attribute, so its errors are shown without highlights.",
    );
  }
  // Imported here: a report without explanations never loads ONNX Runtime.
  const { loadClassifier, readRunConfig } = await import("../predict/classifier.js");
  let clf: Awaited<ReturnType<typeof loadClassifier>>;
  try {
    // A report never downloads: a model that is neither in its folder nor in the cache is a note.
    const config = await readRunConfig(run.dir);
    const modelDir = existsSync(join(config.modelDir, "config.json"))
      ? config.modelDir
      : await resolveModel(config.model, { offline: true }).catch(() => null);
    if (modelDir === null) {
      return bare(
        `No highlights: the run's model ${config.model} is neither in ${config.modelDir} nor in the Hugging Face cache, and a report does not download it.`,
      );
    }
    if (opts.maxParams !== undefined) {
      const params = await parameterCount(modelDir);
      if (params > opts.maxParams) {
        const m = formatCount;
        opts.onProgress?.(
          `not explaining the worst errors by default: the model has ${m(params)} parameters (more than ${m(opts.maxParams)}); --explain-errors 3 explains them`,
        );
        return bare(
          `Not explained by default: the run's model has ${m(params)} parameters (more than ${m(opts.maxParams)}), where each post costs about a minute or more on a CPU. Run \`toxlora report --explain-errors 3\` (and a lower --explain-steps) to add the highlights.`,
        );
      }
    }
    opts.onProgress?.("loading the run's model to explain the worst errors");
    clf = await loadClassifier(run.dir, { threads: opts.threads });
  } catch (err) {
    return bare(`No highlights: the run's model could not be loaded (${(err as Error).message}).`);
  }
  try {
    if (!isExplainable(clf))
      return bare("No highlights: this run's classifier has no gradients to attribute.");
    // One attribution run gives every label, so a text wrong for several labels is explained once.
    const texts = [...new Set(chosen.flat().map((c) => c.text))].filter((t) => t.trim() !== "");
    const steps = opts.steps ?? 32;
    opts.onProgress?.(
      `explaining ${texts.length} misclassified posts (${steps} IG steps × ${run.labels.length} labels each)`,
    );
    const t0 = performance.now();
    const out = await explain(clf, texts, {
      steps,
      onProgress: (done, total) =>
        opts.onProgress?.(
          `explained ${done}/${total} posts (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
        ),
    });
    const byKey = new Map(out.map((e) => [`${e.index}\u0000${e.label}`, e]));
    const cases = chosen.map((cs, j) =>
      cs.map((c) => ({
        case: c,
        explanation: byKey.get(`${texts.indexOf(c.text)}\u0000${run.labels[j]}`) ?? null,
      })),
    );
    return { cases, note: null };
  } finally {
    await clf.close();
  }
}

/** 25 k, 4.4 M, 110 M, 1.8 B. */
function formatCount(n: number): string {
  const [div, unit] = n >= 1e9 ? [1e9, "B"] : n >= 1e6 ? [1e6, "M"] : [1e3, "k"];
  const x = n / div;
  return `${x < 10 && unit !== "k" ? x.toFixed(1) : Math.round(x)} ${unit}`;
}

/** Parameters of a checkpoint folder's weights, read from the safetensors headers only. */
async function parameterCount(modelDir: string): Promise<number> {
  const ckpt = await openCheckpoint(modelDir);
  try {
    return ckpt.keys().reduce((n, k) => n + numel(ckpt.info(k).shape), 0);
  } finally {
    await ckpt.close();
  }
}

/** Styles of the highlighted errors. */
export const EXPLAINED_ERRORS_CSS = `
.why-label { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 6px 14px; margin: 8px 0;
  max-width: 900px; }
.why-label h4 { margin: 4px 0; font-size: 14px; }
${HIGHLIGHT_CSS}`;

/** One label's highlighted errors. */
export function explainedErrorsHtml(label: string, cases: ExplainedErrors["cases"][number]): Html {
  if (cases.length === 0) return html``;
  const sections = cases.map(({ case: c, explanation: e }) => {
    const kind = c.kind === "FP" ? "false positive / 誤検出" : "false negative / 見逃し";
    const head = html`<h4>${kind} · ${c.id} · p=${num(c.score)}</h4>`;
    if (!e)
      return html`<section class="why-label" data-id="${c.id}" data-kind="${c.kind}">${head}<div class="text">${c.text}</div></section>`;
    const total = e.tokens.reduce((s, t) => s + t.attribution, 0);
    return html`<section class="why-label" data-label="${label}" data-id="${c.id}" data-kind="${c.kind}" data-logit="${e.logit}" data-baseline-logit="${e.baselineLogit}">${head}
${highlightHtml(e.text, e.tokens)}
<p class="note">logit ${num(e.logit)} − baseline ${num(e.baselineLogit)} = ${num(e.logit - e.baselineLogit)}; the spans add up to ${num(total)} (completeness error ${num(100 * e.completenessError, 1)}%).${e.truncated ? ` Long post: only its first ${e.explainedChars} characters are explained.` : ""}</p></section>`;
  });
  return html`<h4>Why / なぜ</h4>${sections}<p class="note">${HIGHLIGHT_LEGEND}</p>`;
}
