// `toxlora compare --run A --run B [--data F]`: paired bootstrap of run B against run A on the
// same rows (see src/report/compare-runs.ts), printed as a table.
import { type Command, InvalidArgumentError } from "commander";
import { compareRuns, formatComparison } from "../report/compare-runs.js";
import { CI_METRICS, type CiMetric } from "../run/bootstrap.js";
import { integer, positiveInt } from "./analyze.js";

interface CompareFlags {
  run: string[];
  data?: string;
  bootstrap: number;
  seed: number;
  metrics: CiMetric[];
  json?: boolean;
}

function metricList(value: string): CiMetric[] {
  const list = value.split(",").map((s) => s.trim());
  for (const m of list) {
    if (!(CI_METRICS as readonly string[]).includes(m))
      throw new InvalidArgumentError(`unknown metric "${m}" (choose from ${CI_METRICS.join(", ")})`);
  }
  return list as CiMetric[];
}

export function register(program: Command): void {
  program
    .command("compare")
    .description(
      "paired bootstrap comparison of two runs on the same rows: per label and metric, B − A with its 95% interval and P(B > A)",
    )
    .requiredOption(
      "--run <dir>",
      "run directory; give it twice: --run A --run B",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      "--data <file>",
      "score this labelled file with both runs (default: their test-split predictions)",
    )
    .option("--bootstrap <n>", "paired resamples", positiveInt, 1000)
    .option("--seed <n>", "seed of the resampling", integer, 42)
    .option("--metrics <list>", `metrics to show (${CI_METRICS.join(",")})`, metricList, [...CI_METRICS])
    .option("--json", "print the comparison as JSON")
    .addHelpText(
      "after",
      "\nExample:\n  toxlora compare --run runs/prototype --run runs/resample\n" +
        "  toxlora compare --run runs/prototype --run runs/resample --data heldout.jsonl\n",
    )
    .action(async (f: CompareFlags) => {
      if (f.run.length !== 2) throw new Error(`give exactly two runs (--run A --run B), got ${f.run.length}`);
      const r = await compareRuns(f.run[0] as string, f.run[1] as string, {
        data: f.data,
        resamples: f.bootstrap,
        seed: f.seed,
      });
      if (f.json) {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return;
      }
      for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(formatComparison(r, f.metrics));
    });
}
