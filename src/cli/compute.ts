// `--device` and `--threads`, the same on every command that runs a model (train, eval, predict,
// serve, explain, worker, tweets score, demo): an unknown device is refused by commander with the
// choices listed, never run silently on the CPU.
import { type Command, Option } from "commander";
import { positiveInt } from "./analyze.js";

export interface ComputeFlags {
  device: "cpu" | "cuda";
  threads?: number;
}

/** Adds `--device cpu|cuda` (default cpu) and `--threads <n>` to a command. */
export function addComputeOptions(cmd: Command, threadsDefault = "all cores"): Command {
  return cmd
    .addOption(new Option("--device <d>", "execution device").choices(["cpu", "cuda"]).default("cpu"))
    .addOption(
      new Option("--threads <n>", `CPU threads (default: ${threadsDefault})`).argParser(positiveInt),
    );
}
