// `toxlora demo`: the whole workflow offline on the project's own small dataset —
// analyze → balance → split → train (2 epochs) → eval → predict → export → report, then the
// tfidf-lr baseline on the same split and a report comparing the two runs — into one folder.
// Without --model it trains a tiny randomly initialised BERT-shaped model with a character
// tokenizer built from the demo texts: a pipeline proof, its scores mean nothing.
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { BASELINE_MODEL } from "../baseline/config.js";
import { writeAnalysisOutputs } from "../data/analysis-output.js";
import { analyze } from "../data/analyze.js";
import { balance } from "../data/balance.js";
import { loadDataset } from "../data/load.js";
import { llmjpToxicitySchema } from "../data/schema.js";
import { split } from "../data/split.js";
import { writeRecordsJsonl } from "../data/write.js";
import { writeRandomCheckpoint } from "../models/random-checkpoint.js";
import { loadClassifier } from "../predict/classifier.js";
import { evaluateRun } from "../predict/evaluate.js";
import { exportOnnx } from "../predict/export.js";
import { predictFile } from "../predict/predict.js";
import type { QuantLoadOptions } from "../quant/weights.js";
import { buildComparison, buildReport } from "../report/report.js";
import type { ProgressMode } from "../run/progress.js";
import { buildCharTokenizer } from "../tokenizers/build.js";
import { train } from "../train/trainer.js";
import { DEMO_DATASET_PATH } from "./data.js";

/** `quantize` runs every step on a quantized base; export then quantizes to int8/int4 (nf4: float32). */
export interface DemoOptions extends QuantLoadOptions {
  /** Folder for everything (default outputs/demo-<timestamp>). */
  out?: string;
  /** A real pretrained model (folder or Hub id) instead of the random tiny one. */
  model?: string;
  epochs?: number;
  device?: "cpu" | "cuda";
  /** CPU threads (default: all cores). */
  threads?: number;
  progress?: ProgressMode;
  log?: (line: string) => void;
}

export interface DemoResult {
  out: string;
  files: Record<string, string>;
  macroF1: number;
  /** The tfidf-lr baseline's test macro-F1 at its tuned thresholds. */
  baselineMacroF1: number;
  randomModel: boolean;
}

/** New posts the demo scores at the end (written for the project). */
const NEW_POSTS = [
  "今期のアニメ、作画がすごく綺麗で毎週楽しみ！",
  "このキャラの声優さん最高すぎる",
  "お前みたいな奴は消えろ、二度と来るな",
  "最終回で泣いた。スタッフの皆さんありがとう",
  "あの会社の製品は全部ゴミ、買うやつはバカ",
];

const BALANCE = "target-ratio:0.3";

export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const out = resolve(opts.out ?? join("outputs", `demo-${stamp}`));
  const files: Record<string, string> = {};
  const quant = {
    quantize: opts.quantize,
    quantBlockSize: opts.quantBlockSize,
    doubleQuant: opts.doubleQuant,
    quantCache: opts.quantCache,
  };
  await mkdir(out, { recursive: true });

  // 1. analyze
  const schema = llmjpToxicitySchema();
  const data = await loadDataset(DEMO_DATASET_PATH, schema);
  log(`[1/10] analyze: ${data.records.length} demo posts`);
  files.analysis = join(out, "analysis");
  await writeAnalysisOutputs(DEMO_DATASET_PATH, data, analyze(data.records, data.labels), files.analysis);

  // 2. balance (drop negative-heavy rows until each label is near 30% where possible)
  const balanced = balance(data.records, data.labels, BALANCE, { seed: 42 });
  files.balanced = join(out, "data", "balanced.jsonl");
  await writeRecordsJsonl(files.balanced, balanced.records, schema);
  log(`[2/10] balance --strategy ${BALANCE}: ${balanced.records.length} rows`);

  // 3. split
  const s = split(balanced.records, { test: 0.3, seed: 42 });
  files.train = join(out, "data", "train.jsonl");
  files.test = join(out, "data", "test.jsonl");
  await writeRecordsJsonl(files.train, s.train, schema);
  await writeRecordsJsonl(files.test, s.test, schema);
  log(`[3/10] split: ${s.train.length} train / ${s.test.length} test`);

  // 4. train
  let model = opts.model;
  const randomModel = !model;
  if (!model) {
    model = join(out, "model");
    const tok = await buildCharTokenizer(
      data.records.map((r) => r.text),
      { outDir: model, style: "bert" },
    );
    await writeRandomCheckpoint(model, {
      arch: "bert",
      vocabSize: tok.vocabSize,
      hidden: 64,
      layers: 2,
      heads: 4,
      intermediate: 128,
      maxPositions: 128,
      labels: data.labels,
      seed: 7,
    });
    log(
      `[4/10] model: a tiny RANDOMLY INITIALISED BERT (hidden 64, 2 layers) in ${model} — quality is meaningless`,
    );
  } else {
    log(`[4/10] model: ${model}`);
  }
  files.model = model;
  files.run = join(out, "run");
  const r = await train(
    {
      model,
      data: files.train,
      eval: files.test,
      validRatio: 0.15,
      epochs: opts.epochs ?? 2,
      batchSize: 16,
      lr: randomModel ? 3e-3 : 1e-4,
      loraR: randomModel ? 8 : 16,
      loraAlpha: randomModel ? 16 : 32,
      maxLength: 128,
      warmupRatio: 0.1,
      scheduler: "linear",
      out: files.run,
      device: opts.device,
      threads: opts.threads,
      ...quant,
    },
    { progress: opts.progress ?? "auto" },
  );

  // 5. eval (the same command a user runs on any labelled file)
  const compute = { device: opts.device, threads: opts.threads };
  const ev = await evaluateRun(files.run, files.test, { outDir: join(out, "eval"), ...quant, ...compute });
  files.eval = ev.outDir;
  log(`[5/10] eval on ${ev.rows} test rows: macro-F1 ${ev.tuned.macroF1.toFixed(3)} at tuned thresholds`);

  // 6. predict new posts
  files.newPosts = join(out, "data", "new-posts.txt");
  await writeFile(files.newPosts, `${NEW_POSTS.join("\n")}\n`);
  files.predictions = join(out, "predictions.jsonl");
  const clf = await loadClassifier(files.run, { ...quant, ...compute });
  try {
    await predictFile(clf, { input: files.newPosts, out: files.predictions });
  } finally {
    await clf.close();
  }
  log(`[6/10] predict: ${NEW_POSTS.length} new posts scored`);

  // 7. export
  files.onnx = join(out, "export", "model.onnx");
  await exportOnnx(files.run, files.onnx, {
    quantize: quant.quantize === "int8" || quant.quantize === "int4" ? quant.quantize : "none",
    quantBlockSize: quant.quantBlockSize,
  });
  log(`[7/10] export: standalone ONNX classifier written`);

  // 8. report
  files.report = await buildReport(files.run, { threads: compute.threads });
  log(`[8/10] report: ${files.report}`);

  // 9. the baseline a LoRA result is judged against: character n-gram TF-IDF + logistic regression
  files.baseline = join(out, "baseline");
  const b = await train(
    { model: BASELINE_MODEL, data: files.train, eval: files.test, validRatio: 0.15, out: files.baseline },
    { progress: opts.progress ?? "auto" },
  );
  files.baselineReport = await buildReport(files.baseline);
  log(`[9/10] baseline ${BASELINE_MODEL}: macro-F1 ${b.eval.macroF1.toFixed(3)} at tuned thresholds`);

  // 10. both runs side by side
  files.compare = await buildComparison([files.run, files.baseline], join(out, "compare.html"));
  log(`[10/10] report --compare: ${files.compare}`);
  return { out, files, macroF1: r.eval.macroF1, baselineMacroF1: b.eval.macroF1, randomModel };
}
