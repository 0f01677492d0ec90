// `toxlora predict --run <dir> --input <file|-> --out <file>`: batch scoring, streamed and resumable.
import { type Command, Option } from "commander";
import { loadClassifier } from "../predict/classifier.js";
import type { InputFormat } from "../predict/io.js";
import { predictFile } from "../predict/predict.js";
import { positiveInt } from "./analyze.js";
import { withInterrupt } from "./interrupt.js";

interface PredictFlags {
  run: string;
  input: string;
  out: string;
  resume?: boolean;
  format?: InputFormat;
  textField?: string;
  idField?: string;
  batchSize: number;
  threads?: number;
  device: "cpu" | "cuda";
  quiet?: boolean;
}

export function register(program: Command): void {
  program
    .command("predict")
    .description(
      "score texts with a trained run: per-label probabilities and 0/1 decisions at the run's thresholds",
    )
    .requiredOption("--run <dir>", "run directory written by `toxlora train`")
    .requiredOption("--input <file|->", "texts: .jsonl, .csv, .tsv, .txt (one per line) or - for stdin")
    .requiredOption("--out <file>", "output JSON lines (written to <out>.partial until complete)")
    .option("--resume", "continue an interrupted prediction into the same --out")
    .addOption(
      new Option("--format <f>", "input format (default: from the extension)").choices([
        "jsonl",
        "csv",
        "tsv",
        "txt",
      ]),
    )
    .option("--text-field <name>", "field holding the text (default text)")
    .option("--id-field <name>", "field holding the id (default id, when present)")
    .option("--batch-size <n>", "texts per forward pass", positiveInt, 16)
    .option("--threads <n>", "CPU threads", positiveInt)
    .option("--device <d>", "cpu or cuda", "cpu")
    .option("--quiet", "no progress output")
    .action(async (f: PredictFlags) => {
      const clf = await loadClassifier(f.run, {
        batchSize: f.batchSize,
        threads: f.threads,
        device: f.device,
        onNotice: (line) => process.stderr.write(`note: ${line}\n`),
      });
      try {
        const r = await withInterrupt(
          "stopping after this chunk; rerun with --resume to continue",
          (signal) =>
            predictFile(clf, {
              input: f.input,
              out: f.out,
              resume: f.resume,
              format: f.format,
              textField: f.textField,
              idField: f.idField,
              signal,
              onProgress: (rows, s) => {
                if (!f.quiet)
                  process.stderr.write(`\rscored ${rows} texts (${(rows / Math.max(s, 1e-9)).toFixed(1)}/s)`);
              },
            }),
        );
        if (!f.quiet) {
          process.stderr.write(
            `\n${r.interrupted ? "interrupted" : "done"}: ${r.rows} rows in ${f.out}${r.interrupted ? ".partial" : ""}` +
              `${r.resumedRows ? ` (${r.resumedRows} kept from before)` : ""}, ${r.rowsPerSecond.toFixed(1)} texts/s\n`,
          );
        }
        if (r.interrupted) process.exitCode = 130;
      } finally {
        await clf.close();
      }
    });
}
