// Character n-gram TF-IDF with scikit-learn's TfidfVectorizer semantics (analyzer="char"):
//
//   text → NFKC (ours; done before sklearn in the reference) → lowercase → every run of two or more
//   whitespace characters becomes one space (a single "\n" stays) → all n-grams of code points,
//   n in [min, max] → document frequencies over the fitting texts → vocabulary = n-grams in at
//   least minDf texts, sorted by code point → tf = 1 + ln(count) (sublinear) → × idf, where
//   idf = ln((1 + n) / (1 + df)) + 1 (smooth idf) → each row scaled to unit L2 norm.
//
// Rows are sparse (CsrMatrix), entries ascending by column like scipy's canonical CSR.
import { CsrBuilder, type CsrMatrix } from "./sparse.js";

export interface TfidfOptions {
  /** Smallest and largest n-gram length, in code points. */
  ngram: [number, number];
  /** A term must occur in at least this many fitting texts. */
  minDf: number;
  /** tf = 1 + ln(count) instead of count. */
  sublinearTf: boolean;
  lowercase: boolean;
  /** Unicode normalisation applied first. */
  normalization: "NFKC" | "none";
}

export const DEFAULT_TFIDF: TfidfOptions = {
  ngram: [1, 3],
  minDf: 2,
  sublinearTf: true,
  lowercase: true,
  normalization: "NFKC",
};

/** What a fitted vectorizer is: its options, its vocabulary (column order) and idf per column. */
export interface TfidfModel {
  options: TfidfOptions;
  vocabulary: string[];
  idf: Float64Array;
}

// Python's `\s` on str (what sklearn's `\s\s+` matches): str.isspace() characters. JavaScript's
// `\s` differs (it has U+FEFF, lacks U+001C–U+001F and U+0085), so the class is spelled out.
const PY_SPACE =
  "\\t\\n\\v\\f\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const WHITESPACE_RUN = new RegExp(`[${PY_SPACE}]{2,}`, "g");

/** The text the n-grams are taken from. */
export function analyzeText(
  text: string,
  options: Pick<TfidfOptions, "lowercase" | "normalization">,
): string {
  let t = options.normalization === "NFKC" ? text.normalize("NFKC") : text;
  if (options.lowercase) t = t.toLowerCase();
  return t.replace(WHITESPACE_RUN, " ");
}

/** Every n-gram of code points of an analysed text, n from min to max (sklearn's order). */
export function charNgrams(text: string, min: number, max: number): string[] {
  // UTF-16 offset where each code point starts, plus the end: n-grams are slices between them.
  const offsets: number[] = [];
  for (let i = 0; i < text.length; i++) {
    offsets.push(i);
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  const len = offsets.length;
  offsets.push(text.length);
  const out: string[] = [];
  for (let n = min; n <= Math.min(max, len); n++) {
    for (let i = 0; i + n <= len; i++) out.push(text.slice(offsets[i], offsets[i + n]));
  }
  return out;
}

/** Orders strings by code point, as Python sorts str (JavaScript's default compares UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.codePointAt(i) as number;
    const cb = b.codePointAt(j) as number;
    if (ca !== cb) return ca - cb;
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
  return a.length - i - (b.length - j);
}

function checkText(text: unknown, i: number): string {
  if (typeof text !== "string")
    throw new TypeError(`text ${i + 1}: expected a string, got ${text === null ? "null" : typeof text}`);
  return text;
}

/**
 * Counts term ids within one text at a time: a stamp per id says whether it was seen in the current
 * text, so no map is built per text (that, and sorting through closures, was most of the time).
 */
class TermCounter {
  private stamp = new Int32Array(1024);
  private counts = new Int32Array(1024);
  private text = 0;
  private ids: number[] = [];

  start(): void {
    this.text++;
    this.ids.length = 0;
  }

  add(id: number): void {
    if (id >= this.stamp.length) this.grow(id);
    if (this.stamp[id] === this.text) this.counts[id]++;
    else {
      this.stamp[id] = this.text;
      this.counts[id] = 1;
      this.ids.push(id);
    }
  }

  /** The current text's distinct ids (first-seen order). */
  distinct(): Int32Array {
    return Int32Array.from(this.ids);
  }

  /** How often `id` occurs in the current text (valid for its distinct ids). */
  count(id: number): number {
    return this.counts[id];
  }

  private grow(id: number): void {
    const size = Math.max(id + 1, this.stamp.length * 2);
    const stamp = new Int32Array(size);
    stamp.set(this.stamp);
    const counts = new Int32Array(size);
    counts.set(this.counts);
    this.stamp = stamp;
    this.counts = counts;
  }
}

/** Appends one TF-IDF row to `out`: columns `cols` (sorted here, in place), raw counts by column. */
function pushRow(
  out: CsrBuilder,
  cols: Int32Array,
  countOf: (col: number) => number,
  idf: Float64Array,
  sublinear: boolean,
): void {
  cols.sort();
  const values = new Float64Array(cols.length);
  let sq = 0;
  for (let k = 0; k < cols.length; k++) {
    const tf = countOf(cols[k]);
    const v = (sublinear ? 1 + Math.log(tf) : tf) * idf[cols[k]];
    values[k] = v;
    sq += v * v;
  }
  if (sq > 0) {
    const norm = Math.sqrt(sq);
    for (let k = 0; k < values.length; k++) values[k] /= norm;
  }
  out.push(cols, values);
}

/** A fitted TF-IDF vectorizer: {@link TfidfVectorizer.fit} on training texts, then `transform`. */
export class TfidfVectorizer {
  private readonly index: Map<string, number>;

  constructor(readonly model: TfidfModel) {
    if (model.idf.length !== model.vocabulary.length)
      throw new Error(`tf-idf model: ${model.idf.length} idf values for ${model.vocabulary.length} terms`);
    this.index = new Map(model.vocabulary.map((t, i) => [t, i]));
  }

  get options(): TfidfOptions {
    return this.model.options;
  }

  private grams(text: string): string[] {
    const [min, max] = this.options.ngram;
    return charNgrams(analyzeText(text, this.options), min, max);
  }

  /** TF-IDF rows of `texts` over the fitted vocabulary (unknown n-grams are ignored). */
  transform(texts: readonly string[]): CsrMatrix {
    const out = new CsrBuilder(this.model.vocabulary.length);
    const counter = new TermCounter();
    texts.forEach((t, i) => {
      counter.start();
      for (const g of this.grams(checkText(t, i))) {
        const col = this.index.get(g);
        if (col !== undefined) counter.add(col);
      }
      pushRow(out, counter.distinct(), (c) => counter.count(c), this.model.idf, this.options.sublinearTf);
    });
    return out.finish();
  }

  /**
   * Learns the vocabulary and idf from `texts` and returns them with the texts' TF-IDF rows
   * (one pass over the texts, like sklearn's fit_transform).
   */
  static fit(
    texts: readonly string[],
    options: TfidfOptions = DEFAULT_TFIDF,
  ): { vectorizer: TfidfVectorizer; X: CsrMatrix } {
    checkOptions(options);
    const [min, max] = options.ngram;
    const termId = new Map<string, number>();
    const terms: string[] = [];
    const df: number[] = [];
    const counter = new TermCounter();
    const docs = texts.map((t, i) => {
      counter.start();
      for (const g of charNgrams(analyzeText(checkText(t, i), options), min, max)) {
        let id = termId.get(g);
        if (id === undefined) {
          id = terms.length;
          termId.set(g, id);
          terms.push(g);
          df.push(0);
        }
        counter.add(id);
      }
      const ids = counter.distinct();
      for (const id of ids) df[id]++;
      return { ids, counts: ids.map((id) => counter.count(id)) };
    });
    if (terms.length === 0)
      throw new Error("tf-idf: empty vocabulary: the training texts have no characters");
    const kept = terms.map((_, id) => id).filter((id) => df[id] >= options.minDf);
    if (kept.length === 0) {
      throw new Error(
        `tf-idf: empty vocabulary: no character n-gram occurs in at least min_df=${options.minDf} of the ${texts.length} training texts; lower --min-df`,
      );
    }
    kept.sort((a, b) => compareCodePoints(terms[a], terms[b]));
    const column = new Int32Array(terms.length).fill(-1);
    kept.forEach((id, col) => {
      column[id] = col;
    });
    const n = texts.length;
    const idf = Float64Array.from(kept, (id) => Math.log((1 + n) / (1 + df[id])) + 1);
    const vectorizer = new TfidfVectorizer({ options, vocabulary: kept.map((id) => terms[id]), idf });
    const out = new CsrBuilder(kept.length);
    const countByCol = new Int32Array(kept.length);
    for (const doc of docs) {
      let n = 0;
      for (const id of doc.ids) if (column[id] >= 0) n++;
      const cols = new Int32Array(n);
      n = 0;
      doc.ids.forEach((id, k) => {
        if (column[id] < 0) return;
        cols[n++] = column[id];
        countByCol[column[id]] = doc.counts[k];
      });
      pushRow(out, cols, (c) => countByCol[c], idf, options.sublinearTf);
    }
    return { vectorizer, X: out.finish() };
  }
}

function checkOptions(o: TfidfOptions): void {
  const [min, max] = o.ngram;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max < min)
    throw new Error(`tf-idf: n-gram range must be two integers 1 <= min <= max, got ${min},${max}`);
  if (!Number.isInteger(o.minDf) || o.minDf < 1)
    throw new Error(`tf-idf: min_df must be a positive integer, got ${o.minDf}`);
}
