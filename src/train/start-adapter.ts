// `train({ adapter })`: start from an existing PEFT LoRA adapter (e.g. one trained in Python).
// Its adapter_config.json decides the LoRA settings and its saved modules the head kind; a config
// that says otherwise is refused rather than silently overridden.
import path from "node:path";
import { ADAPTER_CONFIG_NAME, isAllLinear, type LoraAdapter, readAdapter } from "../io/peft.js";
import { detectHead } from "../models/registry.js";
import { WeightMap } from "../models/weights.js";
import type { TrainConfigInput } from "../run/config.js";

type TargetModules = TrainConfigInput["targetModules"];

/** Target modules as a comparable value: "all-linear", a regex string, or a sorted name list. */
function normalTargets(t: TargetModules | null): string {
  if (t === undefined || t === null) return "null";
  if (typeof t === "string") return isAllLinear(t) ? "all-linear" : t;
  return JSON.stringify([...new Set(t)].sort());
}

function show(v: unknown): string {
  return Array.isArray(v) ? v.join(",") : String(v);
}

/**
 * The training config with rank, alpha, rsLoRA, target modules and head kind taken from the
 * adapter in `input.adapter` (and its LoRA dropout unless one is given). A given value that
 * differs from the adapter's is an error naming both values.
 */
export async function withAdapterSettings(
  input: TrainConfigInput,
): Promise<{ input: TrainConfigInput; adapter: LoraAdapter | null }> {
  if (!input.adapter) return { input, adapter: null };
  const adapter = await readAdapter(input.adapter);
  const c = adapter.config;
  const file = path.join(input.adapter, ADAPTER_CONFIG_NAME);
  const head = detectHead(new WeightMap(adapter.saved, input.adapter));
  const checks: [flag: string, given: unknown, field: string, theirs: unknown, same: boolean][] = [
    ["--lora-r", input.loraR, "r", c.r, input.loraR === c.r],
    ["--lora-alpha", input.loraAlpha, "lora_alpha", c.lora_alpha, input.loraAlpha === c.lora_alpha],
    ["--rslora", input.useRslora, "use_rslora", c.use_rslora, input.useRslora === c.use_rslora],
    [
      "--target-modules",
      input.targetModules,
      "target_modules",
      c.target_modules,
      normalTargets(input.targetModules) === normalTargets(c.target_modules),
    ],
  ];
  if (head) checks.push(["--head", input.head, "its saved head", head.kind, input.head === head.kind]);
  for (const [flag, given, field, theirs, same] of checks) {
    if (given !== undefined && !same) {
      throw new Error(
        `${flag} ${show(given)} contradicts the adapter to start from: ${field} is ${show(theirs)} in ${file} (leave ${flag} out to use the adapter's)`,
      );
    }
  }
  return {
    adapter,
    input: {
      ...input,
      loraR: c.r,
      loraAlpha: c.lora_alpha,
      useRslora: c.use_rslora,
      targetModules: c.target_modules ?? input.targetModules,
      head: head?.kind ?? input.head,
      loraDropout: input.loraDropout ?? c.lora_dropout,
    },
  };
}
