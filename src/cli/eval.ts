// `toxlora eval --run <dir> --data <file>`: per-label metrics of a run on a labelled file.
import type { Command } from "commander";
import type { SchemaOptions } from "../data/schema.js";
import { evaluateRun } from "../predict/evaluate.js";
import { formatPrototypeTable } from "../run/metrics.js";
import { hashProgress } from "../run/progress.js";
import { addDatasetOptions, type DatasetFlags, integer, nonNegativeInt } from "./analyze.js";
import { addComputeOptions, type ComputeFlags } from "./compute.js";
import {
  addRunQuantOptions,
  type QuantFlags,
  type QuantKernelFlags,
  quantFromFlags,
  quantKernelOption,
} from "./quant.js";

interface EvalFlags extends DatasetFlags, ComputeFlags, QuantKernelFlags {
  run: string;
  data: string;
  out?: string;
  bootstrap: number;
  seed: number;
  json?: boolean;
}

/** The schema flags given, or undefined when none is (then the run's own schema reads the file). */
function schemaFlags(f: EvalFlags): SchemaOptions | undefined {
  const schema: SchemaOptions = {
    preset: f.preset,
    labels: f.labels,
    textField: f.textField,
    idField: f.idField,
    positive: f.positive,
    negative: f.negative,
    labelsField: f.labelsField,
    overallField: f.overallField,
    minVotes: f.minVotes,
  };
  return Object.values(schema).some((v) => v !== undefined) ? schema : undefined;
}

export function register(program: Command): void {
  const cmd = program
    .command("eval")
    .description(
      "evaluate a run on a labelled file: per-label accuracy/precision/recall/F1, confusion, ROC-AUC, PR-AUC",
    )
    .requiredOption("--run <dir>", "run directory written by `toxlora train`")
    .requiredOption(
      "--data <file>",
      "labelled data holding the run's labels (read with the run's schema unless --preset/--labels/... say otherwise)",
    )
    .option(
      "--out <dir>",
      "where eval.json, log.csv, log_tuned.csv, predictions.jsonl go (default <run>/evals/<file>/)",
    )
    .option("--bootstrap <n>", "bootstrap resamples for 95% intervals (0 = off)", nonNegativeInt, 1000)
    .option("--seed <n>", "seed of the bootstrap resampling", integer, 42)
    .option("--json", "print the evaluation as JSON")
    .addOption(quantKernelOption());
  addComputeOptions(addRunQuantOptions(addDatasetOptions(cmd))).action(async (f: EvalFlags & QuantFlags) => {
    const r = await evaluateRun(f.run, f.data, {
      ...quantFromFlags(f),
      quantKernel: f.quantKernel,
      schema: schemaFlags(f),
      inputFormat: f.inputFormat,
      lenient: f.lenient,
      outDir: f.out,
      threads: f.threads,
      device: f.device,
      bootstrap: f.bootstrap,
      seed: f.seed,
      onNotice: (line) => process.stderr.write(`note: ${line}\n`),
      onHashProgress: hashProgress(),
    });
    for (const d of Object.values(r.degenerate)) process.stderr.write(`warning: ${d.warning}\n`);
    if (f.json) {
      process.stdout.write(
        `${JSON.stringify({ at05: r.at05, tuned: r.tuned, thresholds: r.thresholds, quantization: r.quantization }, null, 2)}\n`,
      );
      return;
    }
    process.stdout.write(
      `${f.data}: ${r.rows} rows\n\nat threshold 0.5:\n${formatPrototypeTable(r.at05).text}\n`,
    );
    process.stdout.write(
      `at tuned thresholds (${r.tuned.labels.map((l, j) => `${l} ${r.thresholds[j].toFixed(3)}`).join(", ")}):\n${formatPrototypeTable(r.tuned).text}\n`,
    );
    process.stdout.write(`wrote ${r.outDir}/{eval.json,log.csv,log_tuned.csv,predictions.jsonl}\n`);
  });
}
