// Which base checkpoint an adapter was trained on: the SHA-256 of the checkpoint's weight files
// (memoized under the toxlora cache dir, so only the first look reads them), its name and, for a
// Hugging Face cache snapshot, the commit. Recorded in a run's config.json and adapter_config.json;
// a run loaded on another checkpoint is refused, naming both.
import path from "node:path";
import { openCheckpoint } from "../io/safetensors.js";
import { checkpointFiles, checkpointHash, type HashProgress, toxloraCacheDir } from "./quantized-load.js";

export interface BaseIdentity {
  /** What the run was given as --model (a folder or a Hub id). */
  name: string;
  /** The Hub commit when the folder is a cached snapshot (…/snapshots/<commit>), else null. */
  revision: string | null;
  /** SHA-256 over the weight files' names and SHA-256s (see checkpointHash). */
  sha256: string;
}

/** The identity of the checkpoint in `dir` (see the file comment); `onProgress` follows the hashing. */
export async function baseIdentity(
  dir: string,
  name: string,
  cacheDir = toxloraCacheDir(),
  onProgress?: HashProgress,
): Promise<BaseIdentity> {
  const src = await openCheckpoint(dir);
  let files: string[];
  try {
    files = checkpointFiles(src, dir);
  } finally {
    await src.close();
  }
  const snapshot = /[\\/]snapshots[\\/]([0-9a-f]{40})[\\/]?$/.exec(path.resolve(dir));
  return {
    name,
    revision: snapshot ? snapshot[1] : null,
    sha256: await checkpointHash(files, cacheDir, onProgress),
  };
}

/** The base an adapter_config.json records under `toxlora.base_model` (toxlora's adapters), if any. */
export function recordedBase(adapterConfig: Record<string, unknown>): BaseIdentity | undefined {
  const t = adapterConfig.toxlora as { base_model?: BaseIdentity } | undefined;
  return t?.base_model;
}

function describe(b: BaseIdentity, where?: string): string {
  const rev = b.revision ? `@${b.revision.slice(0, 12)}` : "";
  return `${where ?? b.name}${rev} (weights sha256 ${b.sha256.slice(0, 12)}…)`;
}

/**
 * Refuses to put an adapter on a base other than the one it was trained on (both named); an
 * adapter that records no base (older runs, other tools) is accepted.
 */
export async function checkSameBase(
  adapterDir: string,
  recorded: BaseIdentity | undefined,
  modelDir: string,
  onProgress?: HashProgress,
): Promise<void> {
  if (!recorded?.sha256) return;
  const here = await baseIdentity(modelDir, recorded.name, undefined, onProgress);
  if (here.sha256 === recorded.sha256) return;
  throw new Error(
    `${adapterDir} was trained on ${describe(recorded)}, but the base loaded is ${describe(here, modelDir)}: a LoRA adapter only fits the checkpoint it was trained on`,
  );
}
