// `toxlora split <file> --test 0.3 [--valid 0.1] --seed 42 --out-dir DIR`: stratified
// train/test(/valid) split; writes one JSON lines file per split plus split.json with the ids.
import { join } from "node:path";
import type { Command } from "commander";
import { renderTextTable } from "../data/format.js";
import { SPLIT_NAMES, split, splitRateTable } from "../data/split.js";
import { writeRecordsJsonl } from "../data/write.js";
import { writeFileAtomic } from "../io/atomic.js";
import { refuseOutputOverInput } from "../io/same-file.js";
import { addDatasetOptions, type DatasetFlags, fraction, integer, loadFromFlags } from "./analyze.js";

interface SplitFlags extends DatasetFlags {
  test: number;
  valid?: number;
  seed: number;
  outDir: string;
}

async function runSplit(file: string, flags: SplitFlags): Promise<void> {
  refuseOutputOverInput(
    [...SPLIT_NAMES.map((s) => join(flags.outDir, `${s}.jsonl`)), join(flags.outDir, "split.json")],
    [file],
  );
  const dataset = await loadFromFlags(file, flags);
  const result = split(dataset.records, { test: flags.test, valid: flags.valid, seed: flags.seed });
  const names = SPLIT_NAMES.filter((s) => s !== "valid" || result.valid.length > 0);
  const table = splitRateTable(result, dataset.labels);
  process.stdout.write(
    `${file}: ${dataset.records.length} rows -> ${names.map((s) => `${s} ${result[s].length}`).join(", ")} (seed ${flags.seed})\n` +
      `${renderTextTable({ title: "label rates per split", ...table })}\n`,
  );
  for (const s of names) await writeRecordsJsonl(join(flags.outDir, `${s}.jsonl`), result[s], dataset.schema);
  const manifest = {
    source: file,
    schema: dataset.schema.name,
    labels: dataset.labels,
    seed: flags.seed,
    fractions: { test: flags.test, valid: flags.valid ?? 0 },
    sizes: Object.fromEntries(names.map((s) => [s, result[s].length])),
    ids: Object.fromEntries(names.map((s) => [s, result[s].map((r) => r.id)])),
  };
  await writeFileAtomic(join(flags.outDir, "split.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  process.stdout.write(`wrote ${names.map((s) => `${s}.jsonl`).join(", ")}, split.json to ${flags.outDir}\n`);
}

export function register(program: Command): void {
  addDatasetOptions(
    program
      .command("split")
      .description("stratified train/test(/valid) split (multi-label iterative stratification)")
      .argument("<file>", "dataset (.jsonl, .json, .csv, .tsv)")
      .requiredOption("--test <fraction>", "fraction of rows for the test split, e.g. 0.3", fraction)
      .option("--valid <fraction>", "fraction of rows for a validation split", fraction)
      .option("--seed <n>", "random seed", integer, 42)
      .requiredOption("--out-dir <dir>", "directory for train.jsonl, test.jsonl, valid.jsonl and split.json"),
  ).action((file: string, flags: SplitFlags) => runSplit(file, flags));
}
