#!/usr/bin/env python3
"""scikit-learn side of `npm run bench:baseline` (bench/baseline.ts runs it; not part of toxlora).

Usage: baseline_sklearn.py <dir>   with <dir>/train.jsonl, <dir>/test.jsonl, <dir>/labels.json.
Fits TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True) on the NFKC
training texts and LogisticRegression(C=4, class_weight="balanced", max_iter=2000) per label, then
scores the test texts. Prints one JSON object: fit and predict seconds (wall and CPU), vocabulary
size, iterations, peak RSS; writes the test probabilities to <dir>/sklearn-probs.json.
"""
import json
import os
import resource
import sys
import time
import unicodedata

import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression


def read(path, labels):
    texts, truth = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.append(unicodedata.normalize("NFKC", row["text"]))
            truth.append([1 if row[l] == "yes" else 0 for l in labels])
    return texts, np.array(truth)


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "labels.json"), encoding="utf-8") as f:
        labels = json.load(f)
    train_texts, y = read(os.path.join(d, "train.jsonl"), labels)
    test_texts, _ = read(os.path.join(d, "test.jsonl"), labels)

    t0 = time.perf_counter()
    c0 = time.process_time()
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
    X = vec.fit_transform(train_texts)
    t_vec = time.perf_counter() - t0
    models = []
    for j in range(len(labels)):
        models.append(LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000).fit(X, y[:, j]))
    t_fit = time.perf_counter() - t0
    c_fit = time.process_time() - c0

    t1 = time.perf_counter()
    c1 = time.process_time()
    Xt = vec.transform(test_texts)
    probs = np.stack([m.predict_proba(Xt)[:, 1] for m in models], axis=1)
    t_predict = time.perf_counter() - t1
    c_predict = time.process_time() - c1

    with open(os.path.join(d, "sklearn-probs.json"), "w", encoding="utf-8") as f:
        json.dump(probs.tolist(), f)
    print(json.dumps({
        "sklearn": sklearn.__version__,
        "fitSeconds": t_fit,
        "fitCpuSeconds": c_fit,
        "vectorizeSeconds": t_vec,
        "predictSeconds": t_predict,
        "predictCpuSeconds": c_predict,
        "terms": int(X.shape[1]),
        "nnz": int(X.nnz),
        "iterations": [int(m.n_iter_[0]) for m in models],
        "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
