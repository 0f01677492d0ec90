// `toxlora analyze <file>`: label statistics of a dataset, printed in the prototype's format and,
// with --out, written as tables (CSV + Markdown) and charts (SVG + PNG).
// This file also holds the dataset flags that `balance`, `split` and `train` share.
import { type Command, InvalidArgumentError, Option } from "commander";
import { writeAnalysisOutputs } from "../data/analysis-output.js";
import { analyze, formatAnalysisCsv, formatAnalysisMarkdown, formatAnalysisText } from "../data/analyze.js";
import { type Dataset, loadDataset } from "../data/load.js";
import type { DataFormat } from "../data/readers.js";
import { PRESET_NAMES, type SchemaOptions, schemaFromOptions } from "../data/schema.js";

/** The dataset flags: the label schema options plus how to read the file. */
export interface DatasetFlags extends SchemaOptions {
  inputFormat?: DataFormat;
  lenient?: boolean;
}

export function commaList(value: string): string[] {
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (items.length === 0) throw new InvalidArgumentError("expected a comma-separated list");
  return items;
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError("expected a whole number ≥ 0");
  return n;
}
export function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError("expected an integer");
  return n;
}

export function fraction(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n < 1) || value.trim() === "")
    throw new InvalidArgumentError("expected a number in [0, 1)");
  return n;
}

/** Adds the flags that say how to read a dataset (schema, format, leniency). */
export function addDatasetOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        "--preset <name>",
        "label schema preset (default llmjp-toxicity unless --labels is given)",
      ).choices(PRESET_NAMES),
    )
    .option(
      "--labels <a,b,c>",
      "label fields (a custom schema), or with --preset a subset of its labels",
      commaList,
    )
    .option("--text-field <name>", "custom schema: field holding the text (default text)")
    .option("--id-field <name>", "custom schema: field holding the row id (default id; else the line number)")
    .option("--positive <values>", "custom schema: values meaning 1 (default yes,1,true)", commaList)
    .option("--negative <values>", "custom schema: values meaning 0 (default no,0,false)", commaList)
    .option("--labels-field <name>", "custom schema: one field holding a list of label names or a 0/1 vector")
    .option("--overall-field <name>", "custom schema: field holding an overall label (e.g. toxic/nontoxic)")
    .option(
      "--min-votes <n>",
      "inspection-ai: votes needed for a label (default: more than half)",
      positiveInt,
    )
    .addOption(
      new Option("--input-format <format>", "input format (default: from the extension)").choices([
        "jsonl",
        "json",
        "csv",
        "tsv",
      ]),
    )
    .option("--lenient", "skip bad rows (and list them) instead of stopping at the first one");
}

/** Loads a dataset as the flags say; warnings and skipped rows go to stderr. */
export async function loadFromFlags(file: string, flags: DatasetFlags): Promise<Dataset> {
  const schema = schemaFromOptions(flags);
  const dataset = await loadDataset(file, schema, { lenient: flags.lenient, format: flags.inputFormat });
  reportLoadProblems(dataset);
  return dataset;
}

function reportLoadProblems(dataset: Dataset): void {
  const max = 20;
  const { skipped, warnings } = dataset;
  if (skipped.length > 0) {
    const lines = skipped.map((e) => e.line).filter((l) => l !== undefined);
    process.stderr.write(
      `skipped ${skipped.length} bad row(s)${lines.length ? ` (line ${lines.slice(0, max).join(", ")}${lines.length > max ? ", ..." : ""})` : ""}:\n`,
    );
    for (const e of skipped.slice(0, max)) process.stderr.write(`  ${e.message}\n`);
    if (skipped.length > max) process.stderr.write(`  ... and ${skipped.length - max} more\n`);
  }
  for (const w of warnings.slice(0, max)) process.stderr.write(`warning: ${w}\n`);
  if (warnings.length > max) process.stderr.write(`warning: ... and ${warnings.length - max} more\n`);
}

interface AnalyzeFlags extends DatasetFlags {
  out?: string;
  format: "text" | "json" | "md" | "csv";
}

async function runAnalyze(file: string, flags: AnalyzeFlags): Promise<void> {
  const dataset = await loadFromFlags(file, flags);
  const result = analyze(dataset.records, dataset.labels);
  const header = `dataset: ${file} (schema ${dataset.schema.name}, ${dataset.labels.length} labels)\n`;
  switch (flags.format) {
    case "json":
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      break;
    case "md":
      process.stdout.write(formatAnalysisMarkdown(result, `Dataset analysis: ${file}`));
      break;
    case "csv":
      process.stdout.write(formatAnalysisCsv(result));
      break;
    default:
      process.stdout.write(header + formatAnalysisText(result));
  }
  if (flags.out) {
    process.stderr.write(`writing tables and charts into ${flags.out} ...\n`);
    const written = await writeAnalysisOutputs(file, dataset, result, flags.out);
    process.stderr.write(`wrote ${written.length} files to ${flags.out}\n`);
  }
}

export function register(program: Command): void {
  addDatasetOptions(
    program
      .command("analyze")
      .description(
        "label statistics of a dataset: positives per row, per-label rates, co-occurrence, lengths",
      )
      .argument("<file>", "dataset (.jsonl, .json, .csv, .tsv)")
      .option("--out <dir>", "also write tables (CSV + Markdown) and charts (SVG + PNG) into this directory")
      .addOption(
        new Option("--format <format>", "what to print")
          .choices(["text", "json", "md", "csv"])
          .default("text"),
      ),
  ).action((file: string, flags: AnalyzeFlags) => runAnalyze(file, flags));
}
