// `--quantize`, `--quant-block-size` and `--no-quant-cache`: one definition for every command that
// loads a model (train, eval, predict, serve, tweets score, demo).
import { type Command, Option } from "commander";
import { QUANT_SCHEMES, type QuantLoadOptions, type QuantScheme } from "../quant/weights.js";
import { positiveInt } from "./analyze.js";

export interface QuantFlags {
  quantize: QuantScheme;
  quantBlockSize?: number;
  quantCache: boolean;
}

/** `--quantize <scheme>` */
export function quantizeOption(): Option {
  return new Option(
    "--quantize <scheme>",
    "keep the frozen base's linear weights quantized: none, int8, int4 or nf4 (QLoRA's NormalFloat4)",
  )
    .choices([...QUANT_SCHEMES])
    .default("none");
}

/** `--quant-block-size <n>` */
export function quantBlockSizeOption(): Option {
  return new Option(
    "--quant-block-size <n>",
    "values per quantization block (default 64 for nf4, 32 for int4/int8)",
  ).argParser(positiveInt);
}

/** `--no-quant-cache` */
export function quantCacheOption(): Option {
  return new Option(
    "--no-quant-cache",
    "quantize again instead of using the on-disk cache of quantized weights",
  );
}

function quantOptions(): Option[] {
  return [quantizeOption(), quantBlockSizeOption(), quantCacheOption()];
}

/** Adds the quantized-base options to a command. */
export function addQuantOptions<C extends Command>(cmd: C): C {
  for (const o of quantOptions()) cmd.addOption(o);
  return cmd;
}

/** The library options for the flags. */
export function quantFromFlags(f: QuantFlags): QuantLoadOptions {
  return { quantize: f.quantize, quantBlockSize: f.quantBlockSize, quantCache: f.quantCache };
}
