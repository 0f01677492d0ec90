// --gradient-checkpointing [mode]: the flag (alone, with a mode, negated, absent) reaches the
// training config, and a run recomputes its layers as asked, else selectively exactly when its
// base is quantized.
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
  const cmd = addTrainOptions(new Command("train").exitOverride().configureOutput({ writeErr: () => {} }));
  cmd.parse(["--model", "m", "--data", "d.jsonl", ...args], { from: "user" });
  return configFromTrainFlags(cmd, cmd.opts() as TrainFlags) as TrainConfigInput;
}

describe("gradient checkpointing option", () => {
  it("CLI: --gradient-checkpointing [full|selective], --no-gradient-checkpointing, or left to the default", () => {
    assert.equal(parse("--gradient-checkpointing").gradientCheckpointing, "full");
    assert.equal(parse("--gradient-checkpointing", "selective").gradientCheckpointing, "selective");
    assert.throws(() => parse("--gradient-checkpointing", "half"), /Allowed choices are full, selective/);
    assert.equal(parse("--no-gradient-checkpointing").gradientCheckpointing, false);
    assert.equal(parse().gradientCheckpointing, undefined);
  });

  it("default: selective with a quantized base, off with a float32 one; an explicit choice wins", () => {
    const cfg = (extra: Partial<TrainConfigInput>) =>
      resolveTrainConfig({ model: "m", data: "d.jsonl", labels: ["a"], ...extra });
    assert.equal(usesGradientCheckpointing(cfg({})), false);
    for (const quantize of ["int8", "int4", "nf4"] as const)
      assert.equal(usesGradientCheckpointing(cfg({ quantize })), "selective", quantize);
    assert.equal(usesGradientCheckpointing(cfg({ quantize: "nf4", gradientCheckpointing: false })), false);
    assert.equal(usesGradientCheckpointing(cfg({ quantize: "nf4", gradientCheckpointing: "full" })), "full");
    assert.equal(usesGradientCheckpointing(cfg({ gradientCheckpointing: true })), "full");
    assert.equal(usesGradientCheckpointing(cfg({ gradientCheckpointing: "selective" })), "selective");
    assert.throws(() => cfg({ gradientCheckpointing: "half" as "full" }), /gradientCheckpointing/);
  });
});
