// `toxlora explain --run R (--text T | --input F --out O)`: which stretches of a post made each
// label's score (integrated gradients or gradient × input; see src/explain/).
import { type Command, InvalidArgumentError, Option } from "commander";
import type { AttributionMethod } from "../explain/attribute.js";
import { type Explanation, explain } from "../explain/explain.js";
import { renderExplanation } from "../explain/terminal.js";
import { writeFileAtomic } from "../io/atomic.js";
import { loadClassifier } from "../predict/classifier.js";
import { type InputRecord, readInputs } from "../predict/io.js";
import { positiveInt } from "./analyze.js";
import { addComputeOptions, type ComputeFlags } from "./compute.js";
import { afterProgress, progressLine } from "./status.js";

interface ExplainFlags extends ComputeFlags {
  run: string;
  text?: string;
  input?: string;
  out?: string;
  label: string;
  method: AttributionMethod;
  steps: number;
  maxLength?: number;
  json?: boolean;
  textField?: string;
  quiet?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command("explain")
    .description("which words made the score: per-label token attributions mapped onto the post's characters")
    .requiredOption("--run <dir>", "run directory written by `toxlora train`")
    .option("--text <text>", "one post to explain")
    .option("--input <file|->", "posts: .jsonl, .csv, .tsv, .txt or - for stdin (with --out)")
    .option("--out <file>", "JSON lines, one per post and label (with --input)")
    .option("--label <label>", 'a label of the run, or "all"', "all")
    .addOption(
      new Option("--method <m>", "integrated gradients or gradient × input")
        .choices(["ig", "grad-x-input"])
        .default("ig"),
    )
    .option("--steps <n>", "integration steps of ig, batched into one graph run", positiveInt, 32)
    .option(
      "--max-length <n>",
      "token limit (default: the run's); the rest of a longer post is not explained",
      positiveInt,
    )
    .option("--json", "print JSON lines instead of the coloured view (with --text)")
    .option("--text-field <name>", "field holding the text (default text)")
    .option("--quiet", "no progress output");
  addComputeOptions(cmd).action(async (f: ExplainFlags) => {
    if ((f.text === undefined) === (f.input === undefined)) {
      throw new InvalidArgumentError("give either --text or --input (with --out)");
    }
    if (f.input !== undefined && f.out === undefined) throw new InvalidArgumentError("--input needs --out");
    let records: InputRecord[] = [];
    if (f.input !== undefined) {
      for await (const r of readInputs(f.input, { textField: f.textField })) records.push(r);
      const empty = records.find((r) => r.text.trim() === "");
      if (empty)
        throw new InvalidArgumentError(`${f.input}:${empty.line}: the text is empty: nothing to explain`);
    } else records = [{ index: 0, text: f.text as string, fields: {}, line: 1 }];
    const clf = await loadClassifier(f.run, { threads: f.threads, device: f.device, maxLength: f.maxLength });
    try {
      const out = await explain(
        clf,
        records.map((r) => r.text),
        {
          labels: f.label === "all" ? undefined : [f.label],
          method: f.method,
          steps: f.steps,
          onProgress: (done, total) => {
            if (!f.quiet && f.input !== undefined) progressLine(`explained ${done}/${total} posts`);
          },
        },
      );
      warnTruncated(out, records, f);
      if (f.out !== undefined) {
        const lines = out.map((e) => JSON.stringify({ id: records[e.index].id, ...e }));
        await writeFileAtomic(f.out, `${lines.join("\n")}\n`);
        if (!f.quiet)
          process.stderr.write(
            `${afterProgress()}${out.length} explanations (${records.length} posts) in ${f.out}\n`,
          );
      } else if (f.json) {
        for (const e of out) process.stdout.write(`${JSON.stringify(e)}\n`);
      } else {
        const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;
        process.stdout.write(`${out.map((e) => renderExplanation(e, { colour })).join("\n\n")}\n`);
      }
    } finally {
      await clf.close();
    }
  });
}

function warnTruncated(out: Explanation[], records: InputRecord[], f: ExplainFlags): void {
  const seen = new Set<number>();
  for (const e of out) {
    if (!e.truncated || seen.has(e.index)) continue;
    seen.add(e.index);
    const where = f.input !== undefined ? `${f.input}:${records[e.index].line}` : "--text";
    process.stderr.write(
      `${where}: longer than the token limit: only its first ${e.explainedChars} of ${e.text.length} characters are explained\n`,
    );
  }
}
