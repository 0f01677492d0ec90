// A run directory's config.json and thresholds.json, read back: the part of the run contract
// (RUN_FILES) that every consumer of a run needs, whichever trainer wrote it.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { HeadKind } from "../models/heads.js";
import { RUN_FILES } from "./types.js";

/** What a run's config.json holds (written by the trainer). */
export interface RunConfig {
  toxloraVersion: string;
  labels: string[];
  model: string;
  modelDir: string;
  family: string;
  head: HeadKind;
  maxLength: number;
  padTokenId: number;
  posWeight: number[] | null;
  train: Record<string, unknown>;
  /** The base checkpoint trained on (runs from before it was recorded: absent). */
  base?: { name: string; revision: string | null; sha256: string };
  /** How the base was quantized in training (absent: see `train.quantize`). */
  quantization?: { scheme: string; blockSize?: number; doubleQuant?: boolean };
}

export async function readRunConfig(runDir: string): Promise<RunConfig> {
  const file = join(runDir, RUN_FILES.config);
  if (!existsSync(file)) throw new Error(`${runDir} is not a toxlora run directory (no ${RUN_FILES.config})`);
  return JSON.parse(await readFile(file, "utf8")) as RunConfig;
}

/** The run's thresholds (0.5 each when the run has none). */
export async function readThresholds(runDir: string, labels: string[]): Promise<number[]> {
  const file = join(runDir, RUN_FILES.thresholds);
  if (!existsSync(file)) return labels.map(() => 0.5);
  const t = JSON.parse(await readFile(file, "utf8")) as { labels: string[]; thresholds: number[] };
  return labels.map((l) => {
    const i = t.labels.indexOf(l);
    return i >= 0 ? t.thresholds[i] : 0.5;
  });
}
