// Which quantized base a run is loaded on: the scheme it was trained with (config.json's `train`
// fields) unless the caller names another, in which case one line says so.
import {
  checkpointQuantOptions,
  DEFAULT_BLOCK_SIZE,
  describeQuantization,
  parseQuantScheme,
  type QuantLoadOptions,
  type QuantScheme,
} from "../quant/weights.js";
import type { RunConfig } from "./run-config.js";

/** How a run's base was quantized in training (runs from before quantization: none). */
export function trainedQuant(run: Pick<RunConfig, "train">): QuantLoadOptions {
  const t = run.train ?? {};
  const quantize =
    typeof t.quantize === "string" ? parseQuantScheme(t.quantize, "config.json train.quantize") : "none";
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
): { options: QuantLoadOptions; notice?: string } {
  const trained = trainedQuant(run);
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
