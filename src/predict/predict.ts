// Batch scoring of a file (or stdin): streams the input in chunks, so memory stays constant on any
// input size; appends rows per chunk to `<out>.partial` and renames it to `<out>` when complete;
// `resume` continues an interrupted run without duplicating rows.
import { refuseOutputOverInput } from "../io/same-file.js";
import { type InputFormat, openResumableJsonlWriter, readInputs } from "./io.js";
import type { Classifier } from "./types.js";

export interface PredictFileOptions {
  input: string;
  out: string;
  resume?: boolean;
  format?: InputFormat;
  textField?: string;
  idField?: string;
  /** Texts per classifier call (default 256; the classifier batches inside). */
  chunkSize?: number;
  /** Called after every chunk. */
  onProgress?: (rows: number, seconds: number) => void;
  /** Stop after the current chunk; the output stays resumable. */
  signal?: AbortSignal;
}

export interface PredictFileResult {
  rows: number;
  /** Rows kept from an earlier run when resuming. */
  resumedRows: number;
  seconds: number;
  rowsPerSecond: number;
  /** True when stopped by `signal` (the output is `<out>.partial`). */
  interrupted: boolean;
}

/** Scores every text of `input` and writes one JSON line per input row to `out`. */
export async function predictFile(clf: Classifier, opts: PredictFileOptions): Promise<PredictFileResult> {
  refuseOutputOverInput([opts.out, `${opts.out}.partial`], [opts.input]);
  const writer = await openResumableJsonlWriter(opts.out, { resume: opts.resume });
  const start = Date.now();
  const chunkSize = opts.chunkSize ?? 256;
  let chunk: { index: number; id?: string | number; text: string }[] = [];
  let scored = 0;
  const flush = async () => {
    if (chunk.length === 0) return;
    const results = await clf.predict(chunk.map((c) => c.text));
    await writer.append(
      chunk.map((c, k) => ({
        index: c.index,
        ...(c.id !== undefined ? { id: c.id } : {}),
        text: c.text,
        probs: Object.fromEntries(clf.labels.map((l, j) => [l, round(results[k].probs[j])])),
        labels: Object.fromEntries(clf.labels.map((l, j) => [l, results[k].decisions[j] ? 1 : 0])),
      })),
    );
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
    })) {
      if (rec.index < writer.resumedRows) continue;
      chunk.push({ index: rec.index, id: rec.id, text: rec.text });
      if (chunk.length >= chunkSize) {
        await flush();
        if (opts.signal?.aborted) {
          interrupted = true;
          break;
        }
      }
    }
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
  };
}

/** Six significant decimals keep files small without changing any decision. */
function round(p: number): number {
  return Math.round(p * 1e6) / 1e6;
}
