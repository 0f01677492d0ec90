// `--quantize`, `--quant-block-size`, `--double-quant` and `--no-quant-cache`: one definition for
// every command that loads a model (train, demo: float32 unless told; eval, predict, serve, tweets
// score, worker: the scheme the run was trained with unless told).
import { type Command, Option } from "commander";
import { QUANT_SCHEMES, type QuantLoadOptions, type QuantScheme } from "../quant/weights.js";
import { positiveInt } from "./analyze.js";

export interface QuantFlags {
  /** Undefined on a run command without --quantize: the run's own scheme. */
  quantize?: QuantScheme;
  quantBlockSize?: number;
  doubleQuant?: boolean;
  quantCache: boolean;
}

/** `--quantize <scheme>`; on a command that loads a run, the default is the run's own scheme. */
export function quantizeOption(forRun = false): Option {
  const o = new Option(
    "--quantize <scheme>",
    `keep the frozen base's linear weights quantized: none, int8, int4 or nf4 (QLoRA's NormalFloat4)${forRun ? " (default: the scheme the run was trained with)" : ""}`,
  ).choices([...QUANT_SCHEMES]);
  return forRun ? o : o.default("none");
}

/** `--quant-block-size <n>` */
export function quantBlockSizeOption(): Option {
  return new Option(
    "--quant-block-size <n>",
    "values per quantization block, a power of two from 16 to 256 (default 64 for nf4, 32 for int4/int8; on a run with its scheme: the run's)",
  ).argParser(positiveInt);
}

/** `--double-quant` (and, on a run command, `--no-double-quant` to drop the run's). */
export function doubleQuantOptions(forRun = false): Option[] {
  const on = new Option(
    "--double-quant",
    "nf4: quantize the per-block absmax values too, as bitsandbytes' double quantization (8-bit, blocks of 256)",
  );
  if (!forRun) return [on];
  return [
    on,
    new Option(
      "--no-double-quant",
      "nf4: keep float32 absmax values even if the run was trained with --double-quant",
    ),
  ];
}

/** `--no-quant-cache` */
export function quantCacheOption(): Option {
  return new Option(
    "--no-quant-cache",
    "quantize again instead of using the on-disk cache of quantized weights",
  );
}

function quantOptions(forRun: boolean): Option[] {
  return [quantizeOption(forRun), quantBlockSizeOption(), ...doubleQuantOptions(forRun), quantCacheOption()];
}

/** Adds the quantized-base options to a command that loads a base model (train, demo). */
export function addQuantOptions<C extends Command>(cmd: C): C {
  for (const o of quantOptions(false)) cmd.addOption(o);
  return cmd;
}

/** Adds the quantized-base options to a command that loads a run (default: the run's scheme). */
export function addRunQuantOptions<C extends Command>(cmd: C): C {
  for (const o of quantOptions(true)) cmd.addOption(o);
  return cmd;
}

export interface QuantKernelFlags {
  quantKernel?: "matmulnbits" | "qgemm";
}

/** `--quant-kernel` (eval, predict, serve, tweets score): which kernel runs a loaded int8/int4 base. */
export function quantKernelOption(): Option {
  return new Option(
    "--quant-kernel <kernel>",
    "with an int8/int4 base: matmulnbits (default; float32 activations, as the run was evaluated; int8 is dequantized per layer) or qgemm (onnxruntime's int8 GEMM: ~2x faster on x86 CPUs with VNNI, activations quantized to 8 bits)",
  ).choices(["matmulnbits", "qgemm"]);
}

/** With --queue the workers load the run (with their own options), so a kernel here would be ignored. */
export function refuseQuantKernelOnQueue(f: QuantKernelFlags & { queue?: string }): void {
  if (f.queue !== undefined && f.quantKernel !== undefined)
    throw new Error(
      "--quant-kernel applies to scoring on this machine; with --queue the workers load the run",
    );
}

/** The library options for the flags. */
export function quantFromFlags(f: QuantFlags): QuantLoadOptions {
  const o: QuantLoadOptions = {
    quantize: f.quantize,
    quantBlockSize: f.quantBlockSize,
    quantCache: f.quantCache,
  };
  if (f.doubleQuant !== undefined) o.doubleQuant = f.doubleQuant;
  return o;
}
