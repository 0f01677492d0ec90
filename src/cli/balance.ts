// `toxlora balance <file> --strategy S --out FILE`: rebalance a dataset (the prototype's hand-made
// downsampled files as re-runnable strategies) and print the label table of the result.
import type { Command } from "commander";
import { analyze, rateLines } from "../data/analyze.js";
import { balance } from "../data/balance.js";
import { formatHistogram } from "../data/format.js";
import { writeRecordsJsonl } from "../data/write.js";
import { refuseOutputOverInput } from "../io/same-file.js";
import { addDatasetOptions, type DatasetFlags, fraction, integer, loadFromFlags } from "./analyze.js";

interface BalanceFlags extends DatasetFlags {
  strategy: string;
  out: string;
  seed: number;
  ratio?: number;
}

async function runBalance(file: string, flags: BalanceFlags): Promise<void> {
  refuseOutputOverInput([flags.out], [file]);
  const dataset = await loadFromFlags(file, flags);
  const result = balance(dataset.records, dataset.labels, flags.strategy, {
    seed: flags.seed,
    ratio: flags.ratio,
  });
  const out: string[] = [`${file}: ${dataset.records.length} rows (schema ${dataset.schema.name})`];
  for (const s of result.steps) {
    out.push(`${s.step}: ${s.rowsBefore} -> ${s.rowsAfter} rows${s.note ? ` (${s.note})` : ""}`);
    for (const d of s.details ?? []) out.push(`  ${d}`);
  }
  const stats = analyze(result.records, result.labels);
  out.push(
    `rows: ${stats.rows}`,
    `positive labels per row: ${formatHistogram(stats.positivesPerRow)}`,
    ...rateLines(stats),
  );
  process.stdout.write(`${out.join("\n")}\n`);
  await writeRecordsJsonl(flags.out, result.records, dataset.schema, result.labels);
  process.stdout.write(`wrote ${flags.out} (${result.records.length} rows)\n`);
}

export function register(program: Command): void {
  addDatasetOptions(
    program
      .command("balance")
      .description("rebalance a dataset and write it as JSON lines")
      .argument("<file>", "dataset (.jsonl, .json, .csv, .tsv)")
      .requiredOption(
        "--strategy <s>",
        "comma-separated: drop-all-negative, keep-labels:a,b,c, equalize:label, target-ratio[:r], prototype",
      )
      .requiredOption("--out <file>", "output JSON lines file (written atomically)")
      .option("--seed <n>", "seed of the random deletions", integer, 42)
      .option("--ratio <r>", "target positive rate for target-ratio (default 0.5)", fraction),
  ).action((file: string, flags: BalanceFlags) => runBalance(file, flags));
}
