// `toxlora demo`: the whole workflow on the bundled demo data, offline (see src/demo/run.ts).
import type { Command } from "commander";
import { runDemo } from "../demo/run.js";
import { positiveInt } from "./analyze.js";
import { addComputeOptions, type ComputeFlags } from "./compute.js";
import { addQuantOptions, type QuantFlags, quantFromFlags } from "./quant.js";

/** The commands a user runs next on what the demo made (paths quoted when they need it). */
export function nextCommands(files: Record<string, string>): string[] {
  const q = (p: string | undefined) =>
    p === undefined ? "" : /^[\w./@:+-]+$/.test(p) ? p : `'${p.replace(/'/g, "'\\''")}'`;
  return [
    `  toxlora serve --run ${q(files.run)}                # the model behind a web page and an HTTP API`,
    `  toxlora predict --run ${q(files.run)} --input posts.txt --out scored.jsonl`,
    `  toxlora eval --run ${q(files.run)} --data ${q(files.test)}`,
    `  toxlora train --model ${q(files.model)} --data ${q(files.train)} --epochs 4   # train again`,
    `  toxlora report --run ${q(files.run)}               # the run's report again (open ${q(files.report)} in a browser)`,
  ];
}

export function register(program: Command): void {
  const cmd = program
    .command("demo")
    .description(
      "run analyze → balance → split → train → eval → predict → export → report, then the tfidf-lr baseline and a comparison, on the bundled demo data (offline)",
    )
    .option("--out <dir>", "put everything under this folder (default outputs/demo-<time>)")
    .option("--model <dir|hub id>", "use a real pretrained model instead of a tiny random one")
    .option("--epochs <n>", "training epochs", positiveInt, 2)
    .option("--quiet", "no progress output");
  addComputeOptions(addQuantOptions(cmd)).action(
    async (
      f: { out?: string; model?: string; epochs: number; quiet?: boolean } & QuantFlags & ComputeFlags,
    ) => {
      const r = await runDemo({
        ...quantFromFlags(f),
        device: f.device,
        threads: f.threads,
        out: f.out,
        model: f.model,
        epochs: f.epochs,
        progress: f.quiet ? "quiet" : "auto",
        log: f.quiet ? () => {} : undefined,
      });
      const w = Math.max(...Object.keys(r.files).map((k) => k.length));
      process.stdout.write(`\ntoxlora demo finished: everything is under ${r.out}\n`);
      for (const [k, v] of Object.entries(r.files)) process.stdout.write(`  ${k.padEnd(w)}  ${v}\n`);
      process.stdout.write(`\nNext, try:\n${nextCommands(r.files).join("\n")}\n`);
      if (r.randomModel) {
        process.stdout.write(
          "\nThe model was RANDOMLY INITIALISED (no pretrained weights offline): its scores prove the pipeline, not quality.\n" +
            "Run `toxlora demo --model <hugging face id or folder>` with a real model for meaningful results.\n",
        );
      }
    },
  );
}
