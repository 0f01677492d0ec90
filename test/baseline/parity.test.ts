// Parity with scikit-learn 1.2 on inspection-ai (test/fixtures/baseline/sklearn_reference.py wrote
// the reference): the same NFKC texts, labels and stratified folds; TfidfVectorizer(analyzer="char",
// ngram_range=(1, 3), min_df=2, sublinear_tf=True) fitted on each training fold and
// LogisticRegression(C=4, class_weight="balanced", max_iter=2000) per label.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { balancedClassWeights, fitLogistic, predictLogistic } from "../../src/baseline/logistic.js";
import { DEFAULT_TFIDF, TfidfVectorizer } from "../../src/baseline/tfidf.js";
import { loadDataset } from "../../src/data/load.js";
import { schemaFromOptions } from "../../src/data/schema.js";
import { averagePrecisionScore } from "../../src/run/metrics.js";
import { fixture } from "../fixture.js";

const DATA = fixture("data/inspection-ai/subset.csv");

interface LabelRef {
  truth: number[];
  fold: number[];
  oof: number[];
  prAuc: number;
  f1At05: number;
  iterations: number[];
}
interface Reference {
  ids: string[];
  labels: Record<string, LabelRef>;
  fullFold: {
    label: string;
    fold: number;
    vocabulary: string[];
    idf: number[];
    coef: number[];
    intercept: number;
  };
  smallVectorizer: {
    texts: string[];
    vocabulary: string[];
    idf: number[];
    rows: { indices: number[]; values: number[] }[];
  };
}
const ref = JSON.parse(readFileSync(fixture("baseline/inspection-ai-oof.json"), "utf8")) as Reference;

/** toxic: Toxic + Very Toxic votes from more than half the annotators; 差別 and 迷惑行為 by majority. */
async function dataset() {
  const data = await loadDataset(
    DATA,
    schemaFromOptions({ preset: "inspection-ai", labels: ["差別", "迷惑行為"] }),
  );
  const truth: Record<string, number[]> = { toxic: [], 差別: [], 迷惑行為: [] };
  for (const r of data.records) {
    const n = Number(r.raw.annotation_num);
    truth.toxic.push(Number(r.raw.Toxic) + Number(r.raw["Very Toxic"]) > n / 2 ? 1 : 0);
    truth.差別.push(r.labels[0]);
    truth.迷惑行為.push(r.labels[1]);
  }
  return { ids: data.records.map((r) => r.id), texts: data.records.map((r) => r.text), truth };
}

test("out-of-fold probabilities agree with scikit-learn", async () => {
  const d = await dataset();
  assert.deepEqual(d.ids, ref.ids);
  for (const [label, lr] of Object.entries(ref.labels)) {
    assert.deepEqual(d.truth[label], lr.truth, `${label}: labels`);
    const oof = new Float64Array(d.texts.length);
    for (let k = 0; k < 5; k++) {
      const tr = lr.fold.flatMap((f, i) => (f === k ? [] : [i]));
      const te = lr.fold.flatMap((f, i) => (f === k ? [i] : []));
      const { vectorizer, X } = TfidfVectorizer.fit(
        tr.map((i) => d.texts[i]),
        DEFAULT_TFIDF,
      );
      const y = tr.map((i) => lr.truth[i]);
      const [w0, w1] = balancedClassWeights(y);
      const fit = fitLogistic(X, y, { C: 4, sampleWeight: y.map((v) => (v ? w1 : w0)), maxIter: 2000 });
      assert.ok(fit.converged, `${label} fold ${k}: ${fit.reason}`);
      const p = predictLogistic(vectorizer.transform(te.map((i) => d.texts[i])), fit.coef, fit.intercept);
      te.forEach((i, j) => {
        oof[i] = p[j];
      });
    }
    const mad = oof.reduce((s, p, i) => s + Math.abs(p - lr.oof[i]), 0) / oof.length;
    const ap = averagePrecisionScore([...oof], lr.truth);
    assert.ok(mad < 1e-3, `${label}: mean |Δp| ${mad}`);
    assert.ok(Math.abs(ap - lr.prAuc) < 0.005, `${label}: PR-AUC ${ap} vs ${lr.prAuc}`);
  }
});

test("one fitted fold: the same vocabulary (sorted by code point), idf and coefficients", async () => {
  const d = await dataset();
  const f = ref.fullFold;
  const lr = ref.labels[f.label];
  const tr = lr.fold.flatMap((k, i) => (k === f.fold ? [] : [i]));
  const { vectorizer, X } = TfidfVectorizer.fit(
    tr.map((i) => d.texts[i]),
    DEFAULT_TFIDF,
  );
  assert.deepEqual(vectorizer.model.vocabulary, f.vocabulary);
  const idfErr = f.idf.reduce((m, v, j) => Math.max(m, Math.abs(v - vectorizer.model.idf[j])), 0);
  assert.ok(idfErr < 1e-12, `idf differs by ${idfErr}`);
  const y = tr.map((i) => lr.truth[i]);
  const [w0, w1] = balancedClassWeights(y);
  const fit = fitLogistic(X, y, { C: 4, sampleWeight: y.map((v) => (v ? w1 : w0)) });
  const coefErr = f.coef.reduce((m, v, j) => Math.max(m, Math.abs(v - fit.coef[j])), 0);
  assert.ok(coefErr < 1e-2, `coefficients differ by up to ${coefErr}`);
  assert.ok(Math.abs(fit.intercept - f.intercept) < 1e-2, `intercept ${fit.intercept} vs ${f.intercept}`);
});

test("vectorizer: lowercase, whitespace runs collapsed as Python's \\s\\s+, code points outside the BMP", () => {
  const s = ref.smallVectorizer;
  const { vectorizer, X } = TfidfVectorizer.fit(s.texts, DEFAULT_TFIDF);
  assert.deepEqual(vectorizer.model.vocabulary, s.vocabulary);
  s.idf.forEach((v, j) => {
    assert.ok(Math.abs(v - vectorizer.model.idf[j]) < 1e-12);
  });
  s.rows.forEach((row, i) => {
    const start = X.indptr[i];
    const end = X.indptr[i + 1];
    // sklearn leaves a row's entries in no particular order; toxlora's are ascending.
    const ours = new Map([...X.indices.subarray(start, end)].map((c, k) => [c, X.data[start + k]]));
    assert.equal(ours.size, row.indices.length, `row ${i}: number of entries`);
    row.indices.forEach((c, k) => {
      const v = ours.get(c);
      assert.ok(
        v !== undefined && Math.abs(v - row.values[k]) < 1e-12,
        `row ${i}, column ${c}: ${v} vs ${row.values[k]}`,
      );
    });
  });
});
