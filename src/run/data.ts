// Training data preparation: load with a label schema, split (or read a separate eval file),
// optionally balance, draw each epoch's re-sampled set, and record a manifest (file hashes and
// split ids) so that a run can be reproduced.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { balance } from "../data/balance.js";
import { type DataRecord, loadDataset } from "../data/load.js";
import { deriveSeed } from "../data/random.js";
import { type LabelSchema, schemaFromOptions } from "../data/schema.js";
import { split } from "../data/split.js";
import type { TrainConfig } from "./config.js";
import { MIN_TUNING_POSITIVES } from "./metrics.js";

export interface PreparedData {
  labels: string[];
  schema: LabelSchema;
  train: DataRecord[];
  valid: DataRecord[];
  test: DataRecord[];
  manifest: DataManifest;
}

export interface DataManifest {
  files: { role: "data" | "eval" | "valid"; path: string; sha256: string; bytes: number; rows: number }[];
  labels: string[];
  seed: number;
  splits: { train: string[]; valid: string[]; test: string[] };
  /** Positive rate of each label per split (the report shows them without re-reading the data). */
  labelRates: { train: Record<string, number>; valid: Record<string, number>; test: Record<string, number> };
  balance?: string;
  warnings: string[];
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** The parts of a training config that say which data to read and how to split it. */
export type DataConfig = Pick<
  TrainConfig,
  | "data"
  | "eval"
  | "testRatio"
  | "validRatio"
  | "valid"
  | "preset"
  | "labels"
  | "textField"
  | "idField"
  | "positive"
  | "negative"
  | "labelsField"
  | "overallField"
  | "minVotes"
  | "inputFormat"
  | "lenient"
  | "balance"
  | "seed"
>;

/** The label schema a training config describes (its preset / label / field options). */
export function schemaForConfig(config: DataConfig): LabelSchema {
  return schemaFromOptions({
    preset: config.preset,
    labels: config.labels,
    textField: config.textField,
    idField: config.idField,
    positive: config.positive,
    negative: config.negative,
    labelsField: config.labelsField,
    overallField: config.overallField,
    minVotes: config.minVotes,
  });
}

/** Loads, splits and (optionally) balances the data a training config names. */
export async function prepareData(config: DataConfig): Promise<PreparedData> {
  const schema = schemaForConfig(config);
  const loadOpts = { lenient: config.lenient, format: config.inputFormat };
  const data = await loadDataset(config.data, schema, loadOpts);
  if (data.records.length === 0) throw new Error(`${config.data}: no rows to train on`);
  const labels = data.labels;
  const warnings = [...data.warnings, ...data.skipped.map((e) => `skipped: ${e.message}`)];
  const files: DataManifest["files"] = [
    {
      role: "data",
      path: resolve(config.data),
      sha256: await sha256File(config.data),
      bytes: (await stat(config.data)).size,
      rows: data.records.length,
    },
  ];

  // A separate file replaces the split it stands for; whatever is not given is held out of --data.
  const separate = async (role: "eval" | "valid", file: string): Promise<DataRecord[]> => {
    const ds = await loadDataset(file, schema, loadOpts);
    if (ds.labels.join() !== labels.join()) {
      throw new Error(`${file}: labels [${ds.labels}] differ from the training data's [${labels}]`);
    }
    files.push({
      role,
      path: resolve(file),
      sha256: await sha256File(file),
      bytes: (await stat(file)).size,
      rows: ds.records.length,
    });
    return ds.records;
  };
  const givenTest = config.eval ? await separate("eval", config.eval) : undefined;
  const givenValid = config.valid ? await separate("valid", config.valid) : undefined;
  const testRatio = givenTest ? 0 : config.testRatio;
  const validRatio = givenValid ? 0 : config.validRatio;
  const s =
    testRatio > 0 || validRatio > 0
      ? split(data.records, {
          test: testRatio > 0 ? testRatio : validRatio,
          valid: testRatio > 0 && validRatio > 0 ? validRatio : undefined,
          seed: config.seed,
        })
      : { train: data.records, valid: [], test: [] };
  // With only one held-out share, split() calls it "test": it is the validation split when --eval gave the test.
  let train: DataRecord[] = s.train;
  const valid: DataRecord[] = givenValid ?? (testRatio > 0 ? s.valid : s.test);
  const test: DataRecord[] = givenTest ?? (testRatio > 0 ? s.test : []);
  for (const [role, rows] of [
    ["--valid", givenValid],
    ["--eval", givenTest],
  ] as const) {
    if (!rows) continue;
    const seen = new Set(train.map((r) => r.text));
    const shared = rows.filter((r) => seen.has(r.text)).length;
    if (shared > 0) warnings.push(`${shared} text(s) of ${role} also appear in the training rows`);
  }
  if (config.balance) {
    train = balance(train, labels, config.balance, { seed: config.seed }).records;
    if (train.length === 0) throw new Error(`balance strategy "${config.balance}" left no training rows`);
  }
  if (valid.length === 0)
    warnings.push("no validation split: thresholds stay at 0.5 and the last epoch is kept");
  warnings.push(...positiveCountWarnings({ train, valid, test }, labels));
  return {
    labels,
    schema,
    train,
    valid,
    test,
    manifest: {
      files,
      labels,
      seed: config.seed,
      splits: { train: train.map((r) => r.id), valid: valid.map((r) => r.id), test: test.map((r) => r.id) },
      labelRates: {
        train: labelRates(train, labels),
        valid: labelRates(valid, labels),
        test: labelRates(test, labels),
      },
      balance: config.balance,
      warnings,
    },
  };
}

/**
 * The rows of one epoch: the training split itself, or — with `resampleEachEpoch` — a fresh
 * balanced subset drawn with a seed derived from the run seed and the epoch number.
 */
export function epochRecords(
  train: readonly DataRecord[],
  labels: readonly string[],
  config: Pick<TrainConfig, "resampleEachEpoch" | "seed">,
  epoch: number,
): DataRecord[] {
  if (!config.resampleEachEpoch) return [...train];
  const r = balance(train, labels, config.resampleEachEpoch, { seed: deriveSeed(config.seed, 1000 + epoch) });
  if (r.labels.join() !== labels.join()) {
    throw new Error(
      `--resample-each-epoch "${config.resampleEachEpoch}" changes the label set; use keep-labels in --balance instead`,
    );
  }
  if (r.records.length === 0) throw new Error(`re-sampling "${config.resampleEachEpoch}" left no rows`);
  return r.records;
}

/**
 * Warnings for labels whose positives are too few to learn or measure: none in the training split
 * (nothing to learn), fewer than MIN_TUNING_POSITIVES in the validation split (its threshold stays
 * 0.5), none in the test split (its recall, F1 and PR-AUC there mean nothing).
 */
export function positiveCountWarnings(
  splits: { train: readonly DataRecord[]; valid: readonly DataRecord[]; test: readonly DataRecord[] },
  labels: readonly string[],
): string[] {
  const count = (rows: readonly DataRecord[], j: number) => rows.reduce((s, r) => s + (r.labels[j] ?? 0), 0);
  const warnings: string[] = [];
  labels.forEach((label, j) => {
    if (count(splits.train, j) === 0)
      warnings.push(`label "${label}": no positive row in the training split; the model cannot learn it`);
    const valid = count(splits.valid, j);
    if (splits.valid.length > 0 && valid < MIN_TUNING_POSITIVES)
      warnings.push(
        `label "${label}": ${valid === 0 ? "no positive row" : `only ${valid} positive row${valid === 1 ? "" : "s"}`} ` +
          `in the validation split (fewer than ${MIN_TUNING_POSITIVES}); a threshold tuned on them would be noise, so it stays at 0.5`,
      );
    if (splits.test.length > 0 && count(splits.test, j) === 0)
      warnings.push(
        `label "${label}": no positive row in the test split; its recall, F1 and PR-AUC there mean nothing`,
      );
  });
  return warnings;
}

/** Positive rate of each label among records. */
export function labelRates(
  records: readonly DataRecord[],
  labels: readonly string[],
): Record<string, number> {
  const out: Record<string, number> = {};
  labels.forEach((l, j) => {
    out[l] = records.length ? records.reduce((s, r) => s + (r.labels[j] ?? 0), 0) / records.length : 0;
  });
  return out;
}

/**
 * pos_weight per label for BCE: "auto" = negatives/positives in the training rows (capped at 100),
 * "none" = no weighting, or explicit "label=w,label=w" (unlisted labels get 1).
 */
export function resolvePosWeight(
  spec: string,
  train: readonly DataRecord[],
  labels: readonly string[],
): number[] | undefined {
  if (spec === "none") return undefined;
  if (spec === "auto") {
    return labels.map((_, j) => {
      const pos = train.reduce((s, r) => s + (r.labels[j] ?? 0), 0);
      return pos === 0 ? 1 : Math.min(100, (train.length - pos) / pos);
    });
  }
  const weights = labels.map(() => 1);
  for (const part of spec.split(",")) {
    const m = /^\s*([^=\s]+)\s*=\s*([0-9.eE+-]+)\s*$/.exec(part);
    if (!m) throw new Error(`--pos-weight: "${part}" is not label=weight (use auto, none or a=2,b=3)`);
    const j = labels.indexOf(m[1]);
    if (j < 0) throw new Error(`--pos-weight: unknown label "${m[1]}" (labels: ${labels.join(", ")})`);
    const w = Number(m[2]);
    if (!(w > 0)) throw new Error(`--pos-weight: weight for ${m[1]} must be positive, got ${m[2]}`);
    weights[j] = w;
  }
  return weights;
}
