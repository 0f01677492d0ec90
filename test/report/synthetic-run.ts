// A synthetic run directory following RUN_FILES (src/run/types.ts) exactly, for report tests
// that must not depend on training: seeded scores that separate the classes imperfectly, training
// records over a few epochs, thresholds tuned on the predictions, a manifest pointing at a real
// data file (so split label rates can be recomputed from it).

import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createRng } from "../../src/data/random.js";
import { evaluateSplit } from "../../src/run/eval-files.js";
import { tuneThresholds } from "../../src/run/metrics.js";
import { RUN_FILES } from "../../src/run/types.js";

export interface SyntheticRunOptions {
  labels?: string[];
  rows?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  seed?: number;
  /** Texts to use for the first rows (e.g. markup that must be escaped). */
  texts?: string[];
  /** Training seconds per step, recorded as eval.json's `trainSeconds`. */
  secondsPerStep?: number;
  /** A label the model "never learned": scored 0.5002 on every test row, threshold 0.5. */
  flatLabel?: string;
}

const SENTENCES = [
  "このアニメの作画は本当に素晴らしかった。",
  "あの会社の対応は最低だ、二度と買わない。",
  "お前みたいな奴は消えろ。",
  "今日は天気が良いので散歩に行きました。",
  "〇〇人はみんな同じだ、信用できない。",
  "新商品のレビューを書きます。",
];

export async function writeSyntheticRun(dir: string, options: SyntheticRunOptions = {}): Promise<void> {
  const labels = options.labels ?? ["obscene", "discriminatory", "corporate"];
  const rows = options.rows ?? 90;
  const epochs = options.epochs ?? 3;
  const stepsPerEpoch = options.stepsPerEpoch ?? 12;
  const rng = createRng(options.seed ?? 7);
  await mkdir(join(dir, "predictions"), { recursive: true });
  await mkdir(join(dir, "adapter"), { recursive: true });

  // All rows of the "dataset": ids d0..; the last `rows` are the test split.
  const total = rows * 3;
  const data = Array.from({ length: total }, (_, i) => {
    const truth = labels.map((_, j) => (rng.next() < 0.25 + 0.1 * j ? 1 : 0));
    const text = options.texts?.[i - (total - rows)] ?? `${SENTENCES[i % SENTENCES.length]}（${i}）`;
    return { id: `d${i}`, text, truth };
  });
  const dataFile = join(dir, "..", `${dir.split("/").pop()}-data.jsonl`);
  const dataText = data
    .map((d) =>
      JSON.stringify({
        id: d.id,
        text: d.text,
        ...Object.fromEntries(labels.map((l, j) => [l, d.truth[j] ? "yes" : "no"])),
      }),
    )
    .join("\n");
  await writeFile(dataFile, `${dataText}\n`);
  const train = data.slice(0, rows * 2 - 20);
  const valid = data.slice(rows * 2 - 20, rows * 2);
  const test = data.slice(rows * 2);

  // config.json as the trainer writes it: run facts, with the training config under `train`.
  const config = {
    toxloraVersion: "0.1.0",
    labels,
    model: "tiny-synthetic",
    modelDir: "/nonexistent/tiny-synthetic",
    family: "bert",
    head: "multilabel",
    maxLength: 64,
    padTokenId: 0,
    posWeight: null,
    train: {
      model: "tiny-synthetic",
      data: dataFile,
      labels,
      epochs,
      batchSize: 8,
      lr: 1e-4,
      scheduler: "inverse_sqrt",
      warmupRatio: 0.2,
      resampleEachEpoch: "equalize",
    },
  };
  await writeFile(join(dir, RUN_FILES.config), `${JSON.stringify(config, null, 2)}\n`);

  const lines: string[] = [];
  let step = 0;
  const rates = (rs: typeof data) =>
    Object.fromEntries(
      labels.map((l, j) => [l, rs.reduce((s, r) => s + (r.truth[j] as number), 0) / rs.length]),
    );
  for (let e = 1; e <= epochs; e++) {
    const sample = train.filter(() => rng.next() < 0.8);
    lines.push(
      JSON.stringify({
        type: "epoch",
        epoch: e,
        rows: sample.length,
        ids: sample.map((r) => r.id),
        labelRates: rates(sample),
      }),
    );
    for (let k = 0; k < stepsPerEpoch; k++) {
      step++;
      const lr = 1e-4 * Math.min(step / 8, Math.sqrt(8 / step));
      const loss = 0.7 * Math.exp(-step / 30) + 0.1 * rng.next();
      lines.push(
        JSON.stringify({
          type: "step",
          step,
          epoch: e,
          loss,
          lr,
          tokensPerS: 1000,
        }),
      );
    }
    const perLabel = Object.fromEntries(
      labels.map((l, j) => [l, { f1: 0.3 + 0.1 * e + 0.05 * j, precision: 0.5, recall: 0.5 }]),
    );
    lines.push(
      JSON.stringify({
        type: "eval",
        step,
        epoch: e,
        loss: 0.6 - 0.05 * e,
        perLabel,
        macroF1: 0.4 + 0.1 * e,
        microF1: 0.45 + 0.1 * e,
      }),
    );
  }
  await writeFile(join(dir, RUN_FILES.metrics), `${lines.join("\n")}\n`);

  // Scores: positives centred at 0.65, negatives at 0.3, with noise, clamped to [0, 1].
  const probs = test.map((r) =>
    r.truth.map((t) => Math.min(1, Math.max(0, (t ? 0.65 : 0.3) + (rng.next() - 0.5) * 0.7))),
  );
  const flat = options.flatLabel ? labels.indexOf(options.flatLabel) : -1;
  for (const row of probs) if (flat >= 0) row[flat] = 0.5002;
  const truth = test.map((r) => r.truth);
  const thresholds = tuneThresholds(probs, truth).map((t, j) => (j === flat ? 0.5 : t));
  // eval.json as the trainer writes it: the tuned and 0.5 reports (with bootstrap intervals) plus run facts.
  const { at05, tuned } = evaluateSplit(probs, truth, labels, thresholds, { resamples: 200, seed: 1 });
  const evalFile = {
    split: "test",
    rows: test.length,
    loss: 0.4,
    at05,
    tuned,
    thresholds,
    bestStep: step,
    steps: step,
    ...(options.secondsPerStep ? { trainSeconds: step * options.secondsPerStep } : {}),
  };
  await writeFile(join(dir, RUN_FILES.eval), `${JSON.stringify(evalFile, null, 2)}\n`);
  await writeFile(
    join(dir, RUN_FILES.thresholds),
    `${JSON.stringify({ labels, thresholds, tunedOn: "valid" })}\n`,
  );
  const preds = test.map((r, i) =>
    JSON.stringify({
      id: r.id,
      text: r.text,
      truth: Object.fromEntries(labels.map((l, j) => [l, r.truth[j]])),
      probs: Object.fromEntries(labels.map((l, j) => [l, probs[i]?.[j]])),
    }),
  );
  await writeFile(join(dir, RUN_FILES.evalPredictions), `${preds.join("\n")}\n`);
  const manifest = {
    files: [
      {
        role: "data",
        path: dataFile,
        sha256: createHash("sha256").update(`${dataText}\n`).digest("hex"),
        bytes: 0,
        rows: total,
      },
    ],
    labels,
    seed: 42,
    splits: { train: train.map((r) => r.id), valid: valid.map((r) => r.id), test: test.map((r) => r.id) },
    warnings: [],
  };
  await writeFile(join(dir, RUN_FILES.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
}
