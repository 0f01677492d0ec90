// `toxlora export --run <dir> --out model.onnx`: a standalone ONNX classifier with LoRA merged.
import type { Command } from "commander";
import { exportOnnx } from "../predict/export.js";

export function register(program: Command): void {
  program
    .command("export")
    .description("write a run as a standalone ONNX model (LoRA merged) + config.json + tokenizer files")
    .requiredOption("--run <dir>", "run directory written by `toxlora train`")
    .requiredOption("--out <file>", "the .onnx file to write; config and tokenizer files go beside it")
    .action(async (f: { run: string; out: string }) => {
      const r = await exportOnnx(f.run, f.out);
      for (const n of r.notices) process.stderr.write(`note: ${n}\n`);
      process.stdout.write(`wrote ${r.files.join("\n      ")}\n`);
    });
}
