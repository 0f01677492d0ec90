// --gradient-checkpointing: the flag (both spellings, and absent) reaches the training config, and
// a run recomputes its layers when asked, else exactly when its base is quantized.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command } from "commander";
import { addTrainOptions, configFromTrainFlags, type TrainFlags } from "../../src/cli/train.js";
import {
  resolveTrainConfig,
  type TrainConfigInput,
  usesGradientCheckpointing,
} from "../../src/run/config.js";

function parse(...args: string[]): TrainConfigInput {
  const cmd = addTrainOptions(new Command("train").exitOverride());
  cmd.parse(["--model", "m", "--data", "d.jsonl", ...args], { from: "user" });
  return configFromTrainFlags(cmd, cmd.opts() as TrainFlags) as TrainConfigInput;
}

describe("gradient checkpointing option", () => {
  it("CLI: --gradient-checkpointing, --no-gradient-checkpointing, or left to the default", () => {
    assert.equal(parse("--gradient-checkpointing").gradientCheckpointing, true);
    assert.equal(parse("--no-gradient-checkpointing").gradientCheckpointing, false);
    assert.equal(parse().gradientCheckpointing, undefined);
  });

  it("default: on with a quantized base, off with a float32 one; an explicit choice wins", () => {
    const cfg = (extra: Partial<TrainConfigInput>) =>
      resolveTrainConfig({ model: "m", data: "d.jsonl", labels: ["a"], ...extra });
    assert.equal(usesGradientCheckpointing(cfg({})), false);
    for (const quantize of ["int8", "int4", "nf4"] as const)
      assert.equal(usesGradientCheckpointing(cfg({ quantize })), true, quantize);
    assert.equal(usesGradientCheckpointing(cfg({ quantize: "nf4", gradientCheckpointing: false })), false);
    assert.equal(usesGradientCheckpointing(cfg({ gradientCheckpointing: true })), true);
  });
});
