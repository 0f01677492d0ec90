// A run's identity for the queue: workers only take chunks made for the run they serve, so a
// cluster never mixes scores of two models.
import { createHash } from "node:crypto";
import { open, readdir, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { BASELINE_MODEL_DIR } from "../baseline/classifier.js";
import { RUN_FILES } from "../run/types.js";

/** Files at most this large are hashed whole; larger ones by size + first and last MiB. */
const WHOLE_FILE_BYTES = 64 << 20;
const EDGE_BYTES = 1 << 20;

/** Top-level files that are outputs of training or evaluation, not part of the classifier. */
const NOT_MODEL = new Set(["eval.json"]);

/** Folders whose every file defines the classifier: a LoRA run's adapter, a tfidf-lr run's model. */
const MODEL_DIRS = [`${RUN_FILES.adapter}/`, `${BASELINE_MODEL_DIR}/`];

/** Whether a file (path relative to the run directory, `/`-separated) defines the classifier. */
function definesClassifier(rel: string): boolean {
  if (MODEL_DIRS.some((d) => rel.startsWith(d))) return true;
  if (rel.includes("/")) return false;
  if (NOT_MODEL.has(rel)) return false;
  return /\.(json|safetensors|onnx|bin|model)$/.test(rel);
}

async function* walk(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.isFile()) yield p;
  }
}

async function hashFile(path: string): Promise<string> {
  const h = createHash("sha256");
  const { size } = await stat(path);
  const fh = await open(path, "r");
  try {
    const read = async (pos: number, len: number) => {
      const buf = Buffer.alloc(len);
      const { bytesRead } = await fh.read(buf, 0, len, pos);
      h.update(buf.subarray(0, bytesRead));
    };
    if (size <= WHOLE_FILE_BYTES) {
      for (let pos = 0; pos < size; pos += EDGE_BYTES) await read(pos, Math.min(EDGE_BYTES, size - pos));
    } else {
      h.update(`size ${size}\n`);
      await read(0, EDGE_BYTES);
      await read(size - EDGE_BYTES, EDGE_BYTES);
    }
  } finally {
    await fh.close();
  }
  return h.digest("hex");
}

/**
 * SHA-256 (hex) over the files that define a run's classifier: the top-level JSON and weight files
 * (config.json with the base model's name, thresholds.json, …; not eval.json) and everything under
 * adapter/ (a LoRA run) or model/ (a tfidf-lr run). Files over 64 MiB count by size and their
 * first and last MiB.
 */
export async function runFingerprint(runDir: string): Promise<string> {
  const files: string[] = [];
  for await (const p of walk(runDir)) {
    const rel = relative(runDir, p).split(sep).join("/");
    if (definesClassifier(rel)) files.push(rel);
  }
  if (!files.includes("config.json"))
    throw new Error(`${runDir} is not a toxlora run directory (no config.json)`);
  files.sort();
  const h = createHash("sha256");
  for (const rel of files) h.update(`${rel}\0${await hashFile(join(runDir, rel))}\n`);
  return h.digest("hex");
}
