// `toxlora export --run <dir> --out model.onnx`: a standalone ONNX classifier with LoRA merged,
// optionally quantized (int8/int4 as onnxruntime's MatMulNBits).
import { type Command, Option } from "commander";
import { exportOnnx } from "../predict/export.js";
import { positiveInt } from "./analyze.js";

export function register(program: Command): void {
  program
    .command("export")
    .description("write a run as a standalone ONNX model (LoRA merged) + config.json + tokenizer files")
    .requiredOption("--run <dir>", "run directory written by `toxlora train`")
    .requiredOption("--out <file>", "the .onnx file to write; config and tokenizer files go beside it")
    .addOption(
      new Option(
        "--quantize <scheme>",
        "store the linear weights quantized after merging LoRA (com.microsoft MatMulNBits; runs in onnxruntime)",
      )
        .choices(["none", "int8", "int4"])
        .default("none"),
    )
    .option("--quant-block-size <n>", "values per quantization block", positiveInt, 32)
    .option(
      "--triton",
      "also write Triton's config.pbtxt (onnxruntime backend, dynamic batching); --out must be <repository>/<name>/<version>/model.onnx",
    )
    .option("--max-batch <n>", "with --triton: largest batch Triton forms", positiveInt, 32)
    .action(
      async (f: {
        run: string;
        out: string;
        quantize: "none" | "int8" | "int4";
        quantBlockSize: number;
        triton?: boolean;
        maxBatch: number;
      }) => {
        const r = await exportOnnx(f.run, f.out, {
          quantize: f.quantize,
          quantBlockSize: f.quantBlockSize,
          triton: f.triton ? { maxBatchSize: f.maxBatch } : undefined,
        });
        for (const n of r.notices) process.stderr.write(`note: ${n}\n`);
        process.stdout.write(`wrote ${r.files.join("\n      ")}\n`);
      },
    );
}
