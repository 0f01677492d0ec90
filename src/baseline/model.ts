// The tfidf-lr model: one character n-gram TF-IDF vectorizer and one logistic regression per label,
// fitted and scored as scikit-learn's
//   TfidfVectorizer(analyzer="char", ngram_range, min_df, sublinear_tf=True) +
//   LogisticRegression(C, class_weight, solver="lbfgs", max_iter, tol)
// would be. Saved in a folder (see saveTfidfLr) that reloads bit for bit.
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.js";
import { openSafetensors, writeSafetensors } from "../io/safetensors.js";
import type { StopReason } from "./lbfgs.js";
import { balancedClassWeights, fitLogisticMany, predictLogistic } from "./logistic.js";
import { nnz } from "./sparse.js";
import { DEFAULT_TFIDF, type TfidfOptions, TfidfVectorizer } from "./tfidf.js";

export interface TfidfLrOptions {
  tfidf: TfidfOptions;
  /** Inverse L2 regularisation strength (sklearn's C). */
  C: number;
  /** "balanced": each class weighs n / (2 · its count), per label; "none": every row 1. */
  classWeight: "balanced" | "none";
  /** Extra weight of each label's positive rows (the LoRA trainer's --pos-weight), on top of classWeight. */
  posWeight?: number[];
  maxIter: number;
  /** L-BFGS gradient tolerance max|∇f| (sklearn's tol). */
  tol: number;
}

export const DEFAULT_TFIDF_LR: TfidfLrOptions = {
  tfidf: DEFAULT_TFIDF,
  C: 4,
  classWeight: "balanced",
  maxIter: 2000,
  tol: 1e-4,
};

/** How one label's logistic regression fit went. */
export interface LabelFit {
  label: string;
  iterations: number;
  converged: boolean;
  reason: StopReason;
  loss: number;
  gradInf: number;
  /** Seconds from the start of the fits to this label's end (labels are fitted together). */
  seconds: number;
}

export class TfidfLrModel {
  constructor(
    readonly labels: string[],
    readonly vectorizer: TfidfVectorizer,
    /** One coefficient vector per label, over the vectorizer's vocabulary. */
    readonly coef: Float64Array[],
    readonly intercept: number[],
  ) {}

  /** P(label) for each text: rows in input order, one column per label. */
  probs(texts: readonly string[]): number[][] {
    const X = this.vectorizer.transform(texts);
    const cols = this.coef.map((w, j) => predictLogistic(X, w, this.intercept[j]));
    return texts.map((_, i) => cols.map((c) => c[i]));
  }
}

/** Throws, naming the label, when a label's training rows are all one class. */
export function checkBothClasses(truth: readonly (readonly number[])[], labels: readonly string[]): void {
  labels.forEach((label, j) => {
    const pos = truth.reduce((s, t) => s + (t[j] ? 1 : 0), 0);
    if (pos === 0 || pos === truth.length)
      throw new Error(
        `label "${label}": all ${truth.length} training rows are ${pos ? "positive" : "negative"}; logistic regression needs both classes (drop the label with --labels, or use more data)`,
      );
  });
}

/**
 * Fits the model on `texts` with 0/1 `truth[i][j]` per text and label. A label whose training
 * rows are all one class cannot be fitted and is an error naming it.
 */
export function fitTfidfLr(
  texts: readonly string[],
  truth: readonly (readonly number[])[],
  labels: readonly string[],
  options: TfidfLrOptions = DEFAULT_TFIDF_LR,
  onFit: (fit: LabelFit) => void = () => {},
): { model: TfidfLrModel; fits: LabelFit[]; nnz: number } {
  const ys = labels.map((_, j) => truth.map((t) => (t[j] ? 1 : 0)));
  checkBothClasses(truth, labels);
  const { vectorizer, X } = TfidfVectorizer.fit(texts, options.tfidf);
  const t0 = performance.now();
  const sampleWeights = ys.map((y, j) => {
    const [w0, w1] = options.classWeight === "balanced" ? balancedClassWeights(y) : [1, 1];
    const pw = options.posWeight?.[j] ?? 1;
    return y.map((v) => (v ? w1 * pw : w0));
  });
  const fits: LabelFit[] = [];
  const results = fitLogisticMany(
    X,
    ys,
    { C: options.C, sampleWeights, maxIter: options.maxIter, tol: options.tol },
    {},
    (j, r) => {
      fits[j] = {
        label: labels[j],
        iterations: r.iterations,
        converged: r.converged,
        reason: r.reason,
        loss: r.loss,
        gradInf: r.gradInf,
        seconds: (performance.now() - t0) / 1000,
      };
      onFit(fits[j]);
    },
  );
  const coef = results.map((r) => r.coef);
  const intercept = results.map((r) => r.intercept);
  return { model: new TfidfLrModel([...labels], vectorizer, coef, intercept), fits, nnz: nnz(X) };
}

/**
 * The saved format, a folder of three files:
 * - `tfidf-lr.json`     {format: "toxlora-tfidf-lr", version: 1, labels, tfidf: TfidfOptions (+ the fixed
 *                       analyzer "char", smoothIdf true, norm "l2"), terms}
 * - `vocabulary.json`   the n-grams as a JSON array, index = column
 * - `weights.safetensors` float64 tensors `idf` [terms], `coef` [labels, terms], `intercept` [labels]
 */
export const TFIDF_LR_FILES = {
  config: "tfidf-lr.json",
  vocabulary: "vocabulary.json",
  weights: "weights.safetensors",
} as const;

const FORMAT = "toxlora-tfidf-lr";

export async function saveTfidfLr(dir: string, model: TfidfLrModel): Promise<void> {
  await mkdir(dir, { recursive: true });
  const { vocabulary, idf, options } = model.vectorizer.model;
  const V = vocabulary.length;
  const coef = new Float64Array(model.labels.length * V);
  model.coef.forEach((w, j) => {
    coef.set(w, j * V);
  });
  await writeSafetensors(join(dir, TFIDF_LR_FILES.weights), {
    idf: { shape: [V], data: idf },
    coef: { shape: [model.labels.length, V], data: coef },
    intercept: { shape: [model.labels.length], data: Float64Array.from(model.intercept) },
  });
  await writeFileAtomic(join(dir, TFIDF_LR_FILES.vocabulary), JSON.stringify(vocabulary));
  await writeJsonAtomic(join(dir, TFIDF_LR_FILES.config), {
    format: FORMAT,
    version: 1,
    labels: model.labels,
    tfidf: { analyzer: "char", smoothIdf: true, norm: "l2", ...options },
    terms: V,
  });
}

async function readF64(st: Awaited<ReturnType<typeof openSafetensors>>, key: string, shape: number[]) {
  const info = st.info(key);
  if (info.dtype !== "F64" || info.shape.join() !== shape.join())
    throw new Error(`${st.path}: ${key} should be F64 [${shape}], found ${info.dtype} [${info.shape}]`);
  const bytes = await st.getBytes(key);
  return new Float64Array(bytes.slice().buffer);
}

export async function loadTfidfLr(dir: string): Promise<TfidfLrModel> {
  const configFile = join(dir, TFIDF_LR_FILES.config);
  const cfg = JSON.parse(await readFile(configFile, "utf8")) as {
    format?: string;
    labels: string[];
    tfidf: TfidfOptions;
    terms: number;
  };
  if (cfg.format !== FORMAT) throw new Error(`${configFile}: not a tfidf-lr model (format ${cfg.format})`);
  const vocabulary = JSON.parse(await readFile(join(dir, TFIDF_LR_FILES.vocabulary), "utf8")) as string[];
  if (vocabulary.length !== cfg.terms)
    throw new Error(`${dir}: ${vocabulary.length} vocabulary entries, the config says ${cfg.terms}`);
  const st = await openSafetensors(join(dir, TFIDF_LR_FILES.weights));
  try {
    const L = cfg.labels.length;
    const V = cfg.terms;
    const idf = await readF64(st, "idf", [V]);
    const coef = await readF64(st, "coef", [L, V]);
    const intercept = await readF64(st, "intercept", [L]);
    const { ngram, minDf, sublinearTf, lowercase, normalization } = cfg.tfidf;
    const vectorizer = new TfidfVectorizer({
      options: { ngram, minDf, sublinearTf, lowercase, normalization },
      vocabulary,
      idf,
    });
    return new TfidfLrModel(
      cfg.labels,
      vectorizer,
      cfg.labels.map((_, j) => coef.slice(j * V, (j + 1) * V)),
      [...intercept],
    );
  } finally {
    await st.close();
  }
}
