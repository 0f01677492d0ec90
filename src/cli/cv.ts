// `toxlora cv --folds 5 <train flags>`: k-fold cross-validation (src/train/cv.ts) and its report.
import type { Command } from "commander";
import { buildCvReport } from "../report/cv-report.js";
import type { ProgressMode } from "../run/progress.js";
import { crossValidate } from "../train/cv.js";
import { integer } from "./analyze.js";
import { withInterrupt } from "./interrupt.js";
import { addTrainOptions, configFromTrainFlags, type TrainFlags } from "./train.js";

export function register(program: Command): void {
  const cmd = addTrainOptions(
    program
      .command("cv")
      .description(
        "k-fold cross-validation with the split's multilabel stratification: one run per fold under --out, cv.json and report.html; rerun to resume",
      )
      .option("--folds <k>", "number of folds (≥ 2)", integer, 5)
      .option(
        "--show-paths",
        "keep absolute local paths in report.html (default: relative to the page's folder)",
      ),
  );
  cmd.addHelpText(
    "after",
    "\nExample:\n  toxlora cv --folds 5 --model tfidf-lr --data train.jsonl --preset llmjp-toxicity --out outputs/cv1\n",
  );
  cmd.action(async (flags: TrainFlags & { folds: number; showPaths?: boolean }) => {
    const mode: ProgressMode = flags.quiet ? "quiet" : flags.json ? "json" : "auto";
    const config = configFromTrainFlags(cmd, flags);
    const say = (line: string) => {
      if (!flags.quiet) process.stderr.write(`cv: ${line}\n`);
    };
    const r = await withInterrupt("stopping after this step; rerun the same command to continue", (signal) =>
      crossValidate(config, flags.folds, {
        progress: mode,
        signal,
        onFold: (k, n, status) => say(`fold ${k}/${n}: ${status}`),
      }),
    );
    if (r.interrupted) {
      say(`interrupted; rerun the same command to continue ${r.dir}`);
      process.exitCode = 130;
      return;
    }
    const report = await buildCvReport(r.dir, undefined, { showPaths: flags.showPaths });
    const m = r.summary.meanSd.macro.f1;
    say(`macro F1 ${m.mean?.toFixed(4)} ± ${m.sd?.toFixed(4)} over ${r.summary.folds} folds`);
    process.stdout.write(`${JSON.stringify({ dir: r.dir, cv: `${r.dir}/cv.json`, report })}\n`);
  });
}
