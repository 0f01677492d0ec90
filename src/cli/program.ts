// The toxlora command line: a thin layer over the library. Each command lives in its own file
// under src/cli/ and exports `register(program)`; this file only wires them together.
import { Command } from "commander";
import { VERSION } from "../version.js";
import { register as registerAnalyze } from "./analyze.js";
import { register as registerBalance } from "./balance.js";
import { register as registerCompare } from "./compare.js";
import { register as registerCv } from "./cv.js";
import { register as registerDemo } from "./demo.js";
import { register as registerEval } from "./eval.js";
import { register as registerExplain } from "./explain.js";
import { register as registerExport } from "./export.js";
import { register as registerLabel } from "./label.js";
import { register as registerPredict } from "./predict.js";
import { register as registerReport } from "./report.js";
import { register as registerServe } from "./serve.js";
import { register as registerSplit } from "./split.js";
import { register as registerTrain } from "./train.js";
import { register as registerTweets } from "./tweets.js";
import { register as registerWorker } from "./worker.js";

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("toxlora")
    .description("Fine-tune transformers with LoRA into multi-label toxicity classifiers for Japanese text.")
    .version(VERSION, "-V, --version")
    .showHelpAfterError();
  // command registrations (keep one line per command, sorted)
  registerAnalyze(program);
  registerBalance(program);
  registerCompare(program);
  registerCv(program);
  registerDemo(program);
  registerEval(program);
  registerExplain(program);
  registerExport(program);
  registerLabel(program);
  registerPredict(program);
  registerReport(program);
  registerServe(program);
  registerSplit(program);
  registerTrain(program);
  registerTweets(program);
  registerWorker(program);
  return program;
}
