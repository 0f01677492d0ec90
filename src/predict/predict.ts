// Batch scoring of a file (or stdin): streams the input in chunks, so memory stays constant on any
// input size; appends rows per chunk to `<out>.partial` and renames it to `<out>` when complete;
// `resume` continues an interrupted run without duplicating rows.

import { statSync } from "node:fs";
import { resolve } from "node:path";
import { DataError } from "../data/errors.js";
import { refuseOutputOverInput } from "../io/same-file.js";
import { scoredFields } from "../run/output.js";
import type { Classifier, Scored } from "../run/types.js";
import {
  type InputFormat,
  openResumableJsonlWriter,
  type ResumableJsonlWriter,
  RowDigest,
  readInputs,
  streamJsonlWriter,
} from "./io.js";

/**
 * Texts per classifier call. The classifier sorts each call's texts by length into batches, so the
 * numbers depend on where calls are cut: every scorer (this file, the queue workers) cuts at the
 * same input indices, multiples of this block, and so gets bit-identical results.
 */
export const PREDICT_BLOCK = 256;

/** An input row to score: its 0-based index in the input, its id when it has one, its text. */
export interface PredictInput {
  index: number;
  id?: string | number;
  text: string;
}

/**
 * Scores `texts`, the first of which is input row `first`, calling the classifier once per block
 * of input indices [k·block, (k+1)·block): the same calls whatever range a caller holds.
 */
export async function scoreAligned(
  clf: Classifier,
  first: number,
  texts: readonly string[],
  opts: { block?: number; batchSize?: number } = {},
): Promise<Scored[]> {
  const block = opts.block ?? PREDICT_BLOCK;
  const out: Scored[] = [];
  for (let i = 0; i < texts.length; ) {
    const end = Math.min(texts.length, (Math.floor((first + i) / block) + 1) * block - first);
    out.push(...(await clf.predict(texts.slice(i, end), { batchSize: opts.batchSize })));
    i = end;
  }
  return out;
}

/** The output rows of `predict` (one JSON object per input row) for scored inputs. */
export function predictionRows(
  labels: readonly string[],
  inputs: readonly PredictInput[],
  scored: readonly Scored[],
): Record<string, unknown>[] {
  return inputs.map((c, k) => ({
    index: c.index,
    ...(c.id !== undefined ? { id: c.id } : {}),
    text: c.text,
    ...scoredFields(labels, scored[k].probs.map(round), scored[k].decisions),
  }));
}

export interface PredictFileOptions {
  input: string;
  out: string;
  resume?: boolean;
  format?: InputFormat;
  textField?: string;
  idField?: string;
  /** Texts per forward pass (default: the classifier's own). */
  batchSize?: number;
  /** Called after every chunk. */
  onProgress?: (rows: number, seconds: number) => void;
  /** Stop after the current chunk; the output stays resumable. */
  signal?: AbortSignal;
  /** Largest text accepted, in UTF-8 bytes (default 1 MiB): a longer one stops the run, naming its line. */
  maxTextBytes?: number;
  /** Bytes that are not UTF-8 stop the run (naming the line) instead of becoming U+FFFD. */
  strictUtf8?: boolean;
}

/** Default of {@link PredictFileOptions.maxTextBytes}: 1 MiB, far beyond what a model reads. */
export const DEFAULT_MAX_TEXT_BYTES = 1024 * 1024;

export interface PredictFileResult {
  rows: number;
  /** Rows kept from an earlier run when resuming. */
  resumedRows: number;
  seconds: number;
  rowsPerSecond: number;
  /** True when stopped by `signal` (the output is `<out>.partial`). */
  interrupted: boolean;
  /** Texts scored by this run that were longer than the classifier reads, so only their start counted. */
  truncatedRows?: number;
  /** Input lines holding bytes that are not UTF-8 (read as U+FFFD), and the first of them. */
  invalidUtf8Lines?: number;
  firstInvalidUtf8Line?: number;
}

/** Scores every text of `input` and writes one JSON line per input row to `out` (`-`: stdout). */
export async function predictFile(clf: Classifier, opts: PredictFileOptions): Promise<PredictFileResult> {
  const toStdout = opts.out === "-";
  if (toStdout && opts.resume)
    throw new Error("--resume needs an output file: stdout (--out -) cannot be resumed");
  if (!toStdout) refuseOutputOverInput([opts.out, `${opts.out}.partial`], [opts.input]);
  const writer = toStdout
    ? streamJsonlWriter()
    : await openResumableJsonlWriter(opts.out, {
        resume: opts.resume,
        identity: await predictIdentity(clf, opts),
      });
  const digest = new RowDigest();
  let consumed = 0;
  const start = Date.now();
  let chunk: PredictInput[] = [];
  let scored = 0;
  let truncatedRows = 0;
  let invalidUtf8Lines = 0;
  let firstInvalidUtf8Line: number | undefined;
  const flush = async () => {
    if (chunk.length === 0) return;
    const texts = chunk.map((c) => c.text);
    const results = await scoreAligned(clf, chunk[0].index, texts, { batchSize: opts.batchSize });
    await writer.append(predictionRows(clf.labels, chunk, results), digest.value());
    truncatedRows += results.filter((r) => r.truncated).length;
    scored += chunk.length;
    chunk = [];
    opts.onProgress?.(scored, (Date.now() - start) / 1000);
  };
  let interrupted = false;
  try {
    for await (const rec of readInputs(opts.input, {
      format: opts.format,
      textField: opts.textField,
      idField: opts.idField,
      maxTextBytes: opts.maxTextBytes ?? DEFAULT_MAX_TEXT_BYTES,
      strictUtf8: opts.strictUtf8,
      onInvalidUtf8: (line) => {
        invalidUtf8Lines++;
        firstInvalidUtf8Line ??= line;
      },
    })) {
      digest.add(rec.id, rec.text);
      consumed++;
      if (rec.index < writer.resumedRows) {
        if (rec.index === writer.resumedRows - 1) checkResumed(writer, digest, opts.input);
        continue;
      }
      chunk.push({ index: rec.index, id: rec.id, text: rec.text });
      if ((rec.index + 1) % PREDICT_BLOCK === 0) {
        await flush();
        if (opts.signal?.aborted) {
          interrupted = true;
          break;
        }
      }
    }
    checkResumedCount(writer, consumed, opts.input);
    if (!interrupted) await flush();
  } catch (err) {
    await writer.suspend();
    throw err;
  }
  if (interrupted) await writer.suspend();
  else await writer.close();
  const seconds = (Date.now() - start) / 1000;
  return {
    rows: writer.rowCount,
    resumedRows: writer.resumedRows,
    seconds,
    rowsPerSecond: seconds > 0 ? scored / seconds : 0,
    interrupted,
    truncatedRows,
    invalidUtf8Lines,
    ...(firstInvalidUtf8Line === undefined ? {} : { firstInvalidUtf8Line }),
  };
}

/** Summary lines about the input's quality (cut texts, invalid UTF-8) for the end of a run; none when clean. */
export function inputWarnings(r: PredictFileResult, input: string): string[] {
  const out: string[] = [];
  if (r.truncatedRows) {
    out.push(
      `${r.truncatedRows} texts were longer than the model reads (max length): only their start was scored`,
    );
  }
  if (r.invalidUtf8Lines) {
    out.push(
      `${r.invalidUtf8Lines} lines of ${input} hold bytes that are not UTF-8, read as U+FFFD (first: line ${r.firstInvalidUtf8Line}); --strict-utf8 refuses such input`,
    );
  }
  return out;
}

/** Six significant decimals keep files small without changing any decision. */
function round(p: number): number {
  return Math.round(p * 1e6) / 1e6;
}

/**
 * What a prediction output is made from: a resumed output must match it (see
 * openResumableJsonlWriter's `identity`). Options that do not change the rows (batch size, progress)
 * are left out.
 */
async function predictIdentity(clf: Classifier, opts: PredictFileOptions): Promise<Record<string, unknown>> {
  const stdin = opts.input === "-";
  return {
    input: stdin ? "-" : resolve(opts.input),
    inputBytes: stdin ? null : statSync(opts.input).size,
    format: opts.format ?? null,
    textField: opts.textField ?? null,
    idField: opts.idField ?? null,
    labels: clf.labels,
    thresholds: clf.thresholds,
    classifier: (await clf.identity?.()) ?? null,
  };
}

/**
 * The inputs before the resume point must be the ones the kept rows were made from: call with the
 * digest of the first `writer.resumedRows` inputs (`hint` says how to start over instead).
 */
export function checkResumed(
  writer: ResumableJsonlWriter,
  digest: RowDigest,
  input: string,
  hint = "run without --resume to start over",
): void {
  if (writer.resumedDigest !== undefined && writer.resumedDigest !== digest.value()) {
    throw new DataError({
      file: input,
      reason: `cannot resume: its first ${writer.resumedRows} rows are not the ones ${writer.partialPath} was made from; ${hint}`,
    });
  }
}

/** A resumed output's input must have at least the rows kept (call after reading all of it). */
export function checkResumedCount(writer: ResumableJsonlWriter, consumed: number, input: string): void {
  if (consumed < writer.resumedRows) {
    throw new DataError({
      file: input,
      reason: `cannot resume: the input has ${consumed} rows but ${writer.partialPath} already holds ${writer.resumedRows}; it was made from another input`,
    });
  }
}
