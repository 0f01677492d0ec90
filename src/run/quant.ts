// Which quantized base a run is loaded on: the scheme it was trained with (config.json's `train`
// fields) unless the caller names another, in which case one line says so.

import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  blockSizeOf,
  checkpointQuantOptions,
  DEFAULT_BLOCK_SIZE,
  describeQuantization,
  parseQuantScheme,
  type QuantLoadOptions,
  type QuantScheme,
} from "../quant/weights.js";
import type { RunConfig } from "./run-config.js";
import { RUN_FILES } from "./types.js";

/** How a run's base was quantized in training (runs from before quantization: none). */
export function trainedQuant(run: Pick<RunConfig, "train">, file = "config.json"): QuantLoadOptions {
  const t = run.train ?? {};
  const quantize =
    typeof t.quantize === "string" ? parseQuantScheme(t.quantize, `${file} train.quantize`) : "none";
  const out: QuantLoadOptions = { quantize };
  if (typeof t.quantBlockSize === "number") out.quantBlockSize = t.quantBlockSize;
  if (t.doubleQuant === true) out.doubleQuant = true;
  return out;
}

function describe(o: QuantLoadOptions): string {
  const scheme = o.quantize ?? "none";
  if (scheme === "none") return "none";
  return describeQuantization({
    scheme,
    blockSize: o.quantBlockSize ?? DEFAULT_BLOCK_SIZE[scheme as Exclude<QuantScheme, "none">],
    doubleQuant: o.doubleQuant,
  });
}

/**
 * The quantization to load a run with: `asked.quantize` undefined → the run's own scheme (block
 * size and double quantization too, unless given); an explicit one wins, with a notice when it
 * differs from the trained one. The result is checked (unknown scheme, bad block size…).
 */
export function runLoadQuant(
  run: Pick<RunConfig, "train">,
  asked: QuantLoadOptions,
  runDir?: string,
): { options: QuantLoadOptions; notice?: string } {
  const trained = trainedQuant(run, runDir ? join(runDir, RUN_FILES.config) : undefined);
  const sameScheme = asked.quantize === undefined || asked.quantize === trained.quantize;
  const options: QuantLoadOptions = {
    quantize: asked.quantize ?? trained.quantize,
    quantBlockSize: asked.quantBlockSize ?? (sameScheme ? trained.quantBlockSize : undefined),
    quantCache: asked.quantCache,
  };
  const doubleQuant = asked.doubleQuant ?? (sameScheme ? trained.doubleQuant : undefined);
  if (doubleQuant) options.doubleQuant = true;
  checkpointQuantOptions(options);
  const [want, was] = [describe(options), describe(trained)];
  if (want === was) return { options };
  return { options, notice: `loading the base quantized as ${want}, not as the run was trained: ${was}` };
}

/** How a run's base was quantized, as config.json records it (block size resolved). */
export interface RunQuantization {
  scheme: QuantScheme;
  blockSize?: number;
  doubleQuant?: boolean;
}

/** config.json's `quantization` for a training config. */
export function runQuantization(cfg: QuantLoadOptions): RunQuantization {
  const q = checkpointQuantOptions(cfg).quantize;
  if (!q) return { scheme: "none" };
  return {
    scheme: q.scheme,
    blockSize: blockSizeOf(q),
    doubleQuant: q.doubleQuant === true,
  };
}

/**
 * What a run's adapter_config.json adds to PEFT's fields, under `toxlora` (recent PEFT versions
 * drop keys they do not know, with a warning): the base checkpoint's identity and how it was
 * quantized in training, from config.json.
 */
export async function adapterBaseRecord(runDir: string): Promise<{ toxlora?: Record<string, unknown> }> {
  const file = join(runDir, RUN_FILES.config);
  if (!existsSync(file)) return {};
  const run = JSON.parse(await readFile(file, "utf8")) as Partial<RunConfig>;
  if (!run.base) return {};
  const q = run.quantization ?? { scheme: "none" };
  return {
    toxlora: {
      base_model: run.base,
      quantization: {
        scheme: q.scheme,
        ...(q.blockSize !== undefined
          ? { block_size: q.blockSize, double_quant: q.doubleQuant === true }
          : {}),
      },
    },
  };
}
