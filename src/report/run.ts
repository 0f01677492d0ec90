// Reading a run directory (the files listed in RUN_FILES, src/run/types.ts) for reports.
//
// A report is useful on a finished run and also on one still training, so only config.json is
// required; every other file may be missing and the report says so. Files that are present must be
// well-formed: a bad line is an error naming the file, the line and the field.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { DataError } from "../data/errors.js";
import type { EvalReport } from "../run/metrics.js";
import { RUN_FILES } from "../run/types.js";

/** `{"type":"step"}` line of metrics.jsonl: one optimizer step. */
export interface StepRecord {
  type: "step";
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  tokensPerS?: number;
  /** Seconds since the start of training, when the trainer records it. */
  elapsedS?: number;
}

/** `{"type":"eval"}` line of metrics.jsonl: an evaluation on the validation split. */
export interface EvalRecord {
  type: "eval";
  step: number;
  epoch: number;
  loss?: number;
  perLabel: Record<string, { f1: number; [key: string]: unknown }>;
  macroF1?: number;
  microF1?: number;
  elapsedS?: number;
}

/** `{"type":"epoch"}` line of metrics.jsonl: the rows an epoch trained on. */
export interface EpochRecord {
  type: "epoch";
  epoch: number;
  ids?: string[];
  labelRates: Record<string, number>;
}

/** One row of predictions/eval.jsonl. */
export interface EvalPrediction {
  id: string;
  text: string;
  /** 0/1 truth per label. */
  truth: Record<string, number>;
  /** Predicted probability per label. */
  probs: Record<string, number>;
}

export interface RunData {
  dir: string;
  /** config.json as written by the trainer. */
  config: Record<string, unknown>;
  /** The training config: config.json's `train` object (or config.json itself when it is flat). */
  trainConfig: Record<string, unknown>;
  labels: string[];
  steps: StepRecord[];
  evals: EvalRecord[];
  epochs: EpochRecord[];
  /** metrics.jsonl lines of other types (kept so that newer trainers' records are not lost). */
  otherRecords: Record<string, unknown>[];
  /** The final evaluation at the tuned thresholds, from eval.json; null when the run has none yet. */
  eval: EvalReport | null;
  /** eval.json as written (the trainer adds `at05`, `trainSeconds`, `bestStep`, ... around the report). */
  evalFile: Record<string, unknown> | null;
  /** Tuned thresholds, one per label (0.5 each when thresholds.json is missing). */
  thresholds: number[];
  thresholdsTuned: boolean;
  manifest: Record<string, unknown> | null;
  predictions: EvalPrediction[];
  /** Run files that were not found (relative names). */
  missing: string[];
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

async function readJsonFile(file: string): Promise<unknown> {
  const text = await readFile(file, "utf8");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DataError({ file, reason: `invalid JSON: ${(err as Error).message}` });
  }
}

/** Checks one field of a record and returns it; errors name file, line and field. */
class FieldReader {
  constructor(
    private readonly file: string,
    private readonly line: number | undefined,
    private readonly obj: Json,
  ) {}

  private fail(field: string, reason: string): never {
    throw new DataError({ file: this.file, line: this.line, field, reason });
  }

  number(field: string): number {
    const v = this.obj[field];
    if (typeof v !== "number" || !Number.isFinite(v))
      this.fail(field, `expected a finite number, got ${show(v)}`);
    return v;
  }

  optionalNumber(field: string): number | undefined {
    const v = this.obj[field];
    if (v === undefined || v === null) return undefined;
    return this.number(field);
  }

  string(field: string): string {
    const v = this.obj[field];
    if (typeof v === "string") return v;
    if (typeof v === "number") return String(v); // numeric ids are fine
    this.fail(field, `expected a string, got ${show(v)}`);
  }

  object(field: string): Json {
    const v = this.obj[field];
    if (!isObject(v)) this.fail(field, `expected an object, got ${show(v)}`);
    return v;
  }

  /** An object of finite numbers keyed by label. */
  numberMap(field: string): Record<string, number> {
    const m = this.object(field);
    for (const [k, v] of Object.entries(m)) {
      if (typeof v !== "number" || !Number.isFinite(v))
        this.fail(`${field}.${k}`, `expected a number, got ${show(v)}`);
    }
    return m as Record<string, number>;
  }
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/** Parses JSON lines, skipping blank ones; `line` is 1-based. */
function* jsonLines(file: string, text: string): Generator<{ line: number; obj: Json }> {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] as string).trim();
    if (raw === "") continue;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (err) {
      throw new DataError({ file, line: i + 1, reason: `invalid JSON: ${(err as Error).message}` });
    }
    if (!isObject(obj)) throw new DataError({ file, line: i + 1, reason: "expected a JSON object" });
    yield { line: i + 1, obj };
  }
}

function parseMetrics(
  file: string,
  text: string,
): Pick<RunData, "steps" | "evals" | "epochs" | "otherRecords"> {
  const out: Pick<RunData, "steps" | "evals" | "epochs" | "otherRecords"> = {
    steps: [],
    evals: [],
    epochs: [],
    otherRecords: [],
  };
  for (const { line, obj } of jsonLines(file, text)) {
    const r = new FieldReader(file, line, obj);
    switch (obj.type) {
      case "step":
        out.steps.push({
          type: "step",
          step: r.number("step"),
          epoch: r.number("epoch"),
          loss: r.number("loss"),
          lr: r.number("lr"),
          tokensPerS: r.optionalNumber("tokensPerS"),
          elapsedS: r.optionalNumber("elapsedS"),
        });
        break;
      case "eval": {
        const perLabel = r.object("perLabel");
        for (const [label, m] of Object.entries(perLabel)) {
          const f1 = isObject(m) ? m.f1 : undefined;
          if (typeof f1 !== "number" || !Number.isFinite(f1)) {
            throw new DataError({
              file,
              line,
              field: `perLabel.${label}.f1`,
              reason: `expected a number, got ${show(f1)}`,
            });
          }
        }
        out.evals.push({
          type: "eval",
          step: r.number("step"),
          epoch: r.number("epoch"),
          loss: r.optionalNumber("loss"),
          perLabel: perLabel as EvalRecord["perLabel"],
          macroF1: r.optionalNumber("macroF1"),
          microF1: r.optionalNumber("microF1"),
          elapsedS: r.optionalNumber("elapsedS"),
        });
        break;
      }
      case "epoch":
        out.epochs.push({
          type: "epoch",
          epoch: r.number("epoch"),
          ids: Array.isArray(obj.ids) ? obj.ids.map(String) : undefined,
          labelRates: r.numberMap("labelRates"),
        });
        break;
      default:
        if (typeof obj.type !== "string") {
          throw new DataError({
            file,
            line,
            field: "type",
            reason: `expected a string, got ${show(obj.type)}`,
          });
        }
        out.otherRecords.push(obj);
    }
  }
  return out;
}

/** Reads a predictions file (`predictions/eval.jsonl`, or the one `toxlora eval` writes). */
export async function readPredictionsFile(
  file: string,
  labels: readonly string[],
): Promise<EvalPrediction[]> {
  return parsePredictions(file, await readFile(file, "utf8"), labels);
}

function parsePredictions(file: string, text: string, labels: readonly string[]): EvalPrediction[] {
  const rows: EvalPrediction[] = [];
  for (const { line, obj } of jsonLines(file, text)) {
    const r = new FieldReader(file, line, obj);
    // Runs written before the output schema was unified (toxlora 0.1) named the truth `labels`.
    const truthField = "truth" in obj || !("labels" in obj) ? "truth" : "labels";
    const truth = r.numberMap(truthField);
    const probs = r.numberMap("probs");
    for (const l of labels) {
      if (truth[l] !== 0 && truth[l] !== 1) {
        throw new DataError({
          file,
          line,
          field: `${truthField}.${l}`,
          reason: `expected 0 or 1, got ${show(truth[l])}`,
        });
      }
      const p = probs[l];
      if (p === undefined || p < 0 || p > 1) {
        throw new DataError({
          file,
          line,
          field: `probs.${l}`,
          reason: `expected a probability, got ${show(p)}`,
        });
      }
    }
    rows.push({ id: r.string("id"), text: r.string("text"), truth, probs });
  }
  return rows;
}

function parseThresholds(
  file: string,
  obj: unknown,
): { labels: string[]; thresholds: number[]; tunedOn: unknown } {
  if (!isObject(obj)) throw new DataError({ file, reason: "expected a JSON object" });
  const { labels, thresholds } = obj;
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === "string")) {
    throw new DataError({ file, field: "labels", reason: "expected an array of strings" });
  }
  if (!Array.isArray(thresholds) || !thresholds.every((t) => typeof t === "number" && Number.isFinite(t))) {
    throw new DataError({ file, field: "thresholds", reason: "expected an array of numbers" });
  }
  if (labels.length !== thresholds.length) {
    throw new DataError({
      file,
      field: "thresholds",
      reason: `${thresholds.length} thresholds for ${labels.length} labels`,
    });
  }
  // `tunedOn: null` means the run had no validation split and kept 0.5.
  return { labels, thresholds, tunedOn: obj.tunedOn };
}

/** Reads every file of a run directory that a report uses. */
export async function readRun(dir: string): Promise<RunData> {
  const path = (name: string) => join(dir, name);
  const missing: string[] = [];
  const present = (name: string): boolean => {
    if (existsSync(path(name))) return true;
    missing.push(name);
    return false;
  };

  const configFile = path(RUN_FILES.config);
  if (!existsSync(configFile)) {
    throw new Error(`${dir}: not a run directory (no ${RUN_FILES.config})`);
  }
  const config = await readJsonFile(configFile);
  if (!isObject(config)) throw new DataError({ file: configFile, reason: "expected a JSON object" });

  const thresholdsFile = present(RUN_FILES.thresholds)
    ? parseThresholds(path(RUN_FILES.thresholds), await readJsonFile(path(RUN_FILES.thresholds)))
    : null;

  // eval.json is either an EvalReport, or the trainer's wrapper holding one under `tuned`.
  let evalReport: EvalReport | null = null;
  let evalFile: Json | null = null;
  if (present(RUN_FILES.eval)) {
    const obj = await readJsonFile(path(RUN_FILES.eval));
    const isReport = (x: unknown): boolean => isObject(x) && Array.isArray(x.labels) && isObject(x.perLabel);
    if (!isObject(obj)) throw new DataError({ file: path(RUN_FILES.eval), reason: "expected a JSON object" });
    const report = isReport(obj) ? obj : obj.tuned;
    if (!isReport(report)) {
      throw new DataError({
        file: path(RUN_FILES.eval),
        field: "tuned",
        reason: "expected an evaluation report (labels, perLabel, micro, macro)",
      });
    }
    evalReport = report as unknown as EvalReport;
    evalFile = obj;
  }

  // Labels: the config's resolved list, else whatever other file names them.
  const configLabels = Array.isArray(config.labels) ? config.labels.map(String) : undefined;
  const labels = configLabels ?? thresholdsFile?.labels ?? evalReport?.labels;
  if (!labels || labels.length === 0) {
    throw new DataError({ file: configFile, field: "labels", reason: "the run names no labels" });
  }

  let thresholds = labels.map(() => 0.5);
  if (thresholdsFile) {
    thresholds = labels.map((l) => {
      const j = thresholdsFile.labels.indexOf(l);
      if (j < 0) {
        throw new DataError({
          file: path(RUN_FILES.thresholds),
          field: "labels",
          reason: `label "${l}" is missing`,
        });
      }
      return thresholdsFile.thresholds[j] as number;
    });
  }

  const metrics = present(RUN_FILES.metrics)
    ? parseMetrics(path(RUN_FILES.metrics), await readFile(path(RUN_FILES.metrics), "utf8"))
    : { steps: [], evals: [], epochs: [], otherRecords: [] };

  let manifest: Json | null = null;
  if (present(RUN_FILES.manifest)) {
    const obj = await readJsonFile(path(RUN_FILES.manifest));
    if (!isObject(obj))
      throw new DataError({ file: path(RUN_FILES.manifest), reason: "expected a JSON object" });
    manifest = obj;
  }

  const predictions = present(RUN_FILES.evalPredictions)
    ? parsePredictions(
        path(RUN_FILES.evalPredictions),
        await readFile(path(RUN_FILES.evalPredictions), "utf8"),
        labels,
      )
    : [];

  return {
    dir,
    config,
    trainConfig: isObject(config.train) ? config.train : config,
    labels,
    ...metrics,
    eval: evalReport,
    evalFile,
    thresholds,
    thresholdsTuned: thresholdsFile !== null && thresholdsFile.tunedOn !== null,
    manifest,
    predictions,
    missing,
  };
}
