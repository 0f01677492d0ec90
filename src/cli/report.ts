// `toxlora report --run <dir>`: the HTML report of a run (charts also in <run>/imgs/);
// `toxlora report --compare <run> <run> ...`: several runs side by side.
import { type Command, InvalidArgumentError } from "commander";
import { buildComparison, buildReport } from "../report/report.js";
import { positiveInt } from "./analyze.js";

interface ReportFlags {
  run?: string;
  compare?: string[];
  out?: string;
  worst: number;
  explainErrors?: number;
  explainSteps: number;
  threads?: number;
  showPaths?: boolean;
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a whole number ≥ 0");
  return n;
}

const progress = (message: string) => process.stderr.write(`report: ${message}\n`);

export function register(program: Command): void {
  program
    .command("report")
    .description(
      "write a self-contained HTML report of a training run (charts also as SVG/PNG in <run>/imgs/), " +
        "or compare several runs",
    )
    .option("--run <dir>", "run directory written by `toxlora train`")
    .option("--compare <dirs...>", "two or more run directories to put side by side")
    .option("--out <file>", "HTML file to write (default <run>/report.html, or compare.html with --compare)")
    .option("--worst <n>", "misclassified rows listed per label", count, 10)
    .option(
      "--explain-errors <n>",
      "worst false positives and false negatives per label shown with their token attributions (0: none; default 3 when the base model has at most 30 M parameters, else 0 with a note)",
      count,
    )
    .option("--explain-steps <n>", "integrated-gradients steps of those attributions", positiveInt, 32)
    .option("--threads <n>", "CPU threads of the model when explaining", positiveInt)
    .option(
      "--show-paths",
      "keep absolute local paths (run, model, data files); default: relative to the run (with --compare: to the page's folder)",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  toxlora report --run outputs/bert/2026-01-01/12-00-00\n" +
        "  toxlora report --compare runs/prototype runs/resample --out compare.html\n",
    )
    .action(async (flags: ReportFlags) => {
      if (flags.run && flags.compare) throw new Error("give either --run or --compare, not both");
      if (flags.compare) {
        const out = await buildComparison(flags.compare, flags.out ?? "compare.html", {
          onProgress: progress,
          showPaths: flags.showPaths,
        });
        process.stdout.write(`${out}\n`);
        return;
      }
      if (!flags.run) throw new Error("give --run <dir> (or --compare <dir> <dir> ...)");
      const out = await buildReport(flags.run, {
        out: flags.out,
        worstErrors: flags.worst,
        explainErrors: flags.explainErrors,
        explainSteps: flags.explainSteps,
        threads: flags.threads,
        showPaths: flags.showPaths,
        onProgress: progress,
      });
      process.stdout.write(`${out}\n`);
    });
}
