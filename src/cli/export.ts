// `toxlora export --run <dir> --out model.onnx`: a standalone ONNX classifier with LoRA merged,
// optionally quantized (int8/int4 on onnxruntime's int8 GEMM or MatMulNBits).
import { type Command, Option } from "commander";
import { EXPORT_QUANT_KERNELS, type ExportQuantKernel, exportOnnx } from "../predict/export.js";
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
        "store the linear weights quantized after merging LoRA (runs in plain onnxruntime)",
      )
        .choices(["none", "int8", "int4"])
        .default("none"),
    )
    .addOption(
      new Option(
        "--quant-kernel <kernel>",
        "qgemm: int8 GEMM (standard DynamicQuantizeLinear + MatMulInteger; ~2x float32 measured on an x86 CPU with VNNI); matmulnbits: com.microsoft MatMulNBits",
      )
        .choices([...EXPORT_QUANT_KERNELS])
        .default("qgemm"),
    )
    .option(
      "--quant-block-size <n>",
      "values per quantization block (default 32; int4, or int8 with --quant-kernel matmulnbits)",
      positiveInt,
    )
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
        quantKernel: ExportQuantKernel;
        quantBlockSize?: number;
        triton?: boolean;
        maxBatch: number;
      }) => {
        const r = await exportOnnx(f.run, f.out, {
          quantize: f.quantize,
          quantKernel: f.quantKernel,
          quantBlockSize: f.quantBlockSize,
          triton: f.triton ? { maxBatchSize: f.maxBatch } : undefined,
        });
        for (const n of r.notices) process.stderr.write(`note: ${n}\n`);
        process.stdout.write(`wrote ${r.files.join("\n      ")}\n`);
      },
    );
}
