// Model folders from a local path or the Hugging Face Hub.
//
// A Hub id is downloaded with @huggingface/hub into the standard cache, laid out as Python's
// huggingface_hub does it, so both share one cache:
//   <cache>/models--<org>--<name>/blobs/<sha256 or git oid>   file contents
//   <cache>/models--<org>--<name>/snapshots/<commit>/<file>   symlinks to the blobs
//   <cache>/models--<org>--<name>/refs/<revision>             commit a branch/tag pointed to
// Only the files a model needs are fetched (config, safetensors weights, tokenizer files, adapter
// files), and each download is checked against the size and hash the Hub lists for it.
import { createHash } from "node:crypto";
import { copyFile, mkdir, open, readFile, rename, rm, stat, symlink } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import {
  downloadFile,
  getHFHubCachePath,
  getRepoFolderName,
  HubApiError,
  listFiles,
  modelInfo,
} from "@huggingface/hub";
import { writeFileAtomic } from "./atomic.js";

/** Default Hub address (overridden by the `HF_ENDPOINT` environment variable or `endpoint`). */
export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";

/** Progress of one file download. */
export interface DownloadProgress {
  /** Hub id of the repository. */
  repo: string;
  /** Path of the file in the repository. */
  file: string;
  /** Bytes received so far. */
  loaded: number;
  /** Size of the file. */
  total: number;
}

/** Options of {@link resolveModel}. */
export interface ResolveModelOptions {
  /** Branch, tag or commit hash (default "main"). */
  revision?: string;
  /** Cache folder (default `HF_HUB_CACHE`, else `HF_HOME`/hub, else ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Use the cache only, never the network (default: the `HF_HUB_OFFLINE` environment variable). */
  offline?: boolean;
  /** Hub address (default: `HF_ENDPOINT`, else https://huggingface.co). */
  endpoint?: string;
  /** Access token for private or gated models (default: `HF_TOKEN`, else the token file of `huggingface-cli login`). */
  token?: string;
  /** Which repository files to download (default {@link isModelFile}). */
  files?: (repoPath: string) => boolean;
  /** Download progress callback; by default files of 10 MB or more report progress on stderr. */
  onProgress?: (p: DownloadProgress) => void;
  /** fetch implementation (proxies, tests). */
  fetch?: typeof fetch;
}

const TOKENIZER_FILES = new Set([
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.txt",
  "vocab.json",
  "merges.txt",
]);

/**
 * The default choice of files to download: top-level `config.json`, `*.safetensors` and
 * `model.safetensors.index.json`, tokenizer files (`tokenizer.json`, `tokenizer_config.json`,
 * `special_tokens_map.json`, SentencePiece `*.model`, vocab files) and PEFT adapter files.
 */
export function isModelFile(repoPath: string): boolean {
  if (repoPath.includes("/")) return false; // sub-folders hold other variants (onnx/, original/…)
  return (
    repoPath === "config.json" ||
    repoPath === "adapter_config.json" ||
    repoPath.endsWith(".safetensors") ||
    repoPath === "model.safetensors.index.json" ||
    repoPath.endsWith(".model") ||
    TOKENIZER_FILES.has(repoPath)
  );
}

function envFlag(name: string): boolean {
  return ["1", "on", "yes", "true"].includes((process.env[name] ?? "").trim().toLowerCase());
}

/** The Hub cache folder in use: `HF_HUB_CACHE`, else `HF_HOME`/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(): string {
  return getHFHubCachePath();
}

function hfHome(): string {
  return (
    process.env.HF_HOME ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), ".cache"), "huggingface")
  );
}

/** Token from `HF_TOKEN` (or the older `HUGGING_FACE_HUB_TOKEN`), else the saved login token file. */
async function defaultToken(): Promise<string | undefined> {
  const env = process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN;
  if (env?.trim()) return env.trim();
  const file = process.env.HF_TOKEN_PATH ?? path.join(hfHome(), "token");
  try {
    const t = (await readFile(file, "utf8")).trim();
    return t || undefined;
  } catch {
    return undefined;
  }
}

const HUB_ID = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;

/** Whether a string has the shape of a Hub model id ("org/name" or "name"). */
export function isHubId(s: string): boolean {
  return HUB_ID.test(s) && !s.includes("..") && !s.includes("--");
}

async function isDir(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

function storageFolder(cacheDir: string, id: string): string {
  return path.join(cacheDir, getRepoFolderName({ type: "model", name: id }));
}

const COMMIT = /^[0-9a-f]{40}$/;

/**
 * Finds a cached snapshot of `id` at `revision`, checking that it is complete enough to load
 * (a config file, and every shard its weight index lists). Returns its folder, or a reason why not.
 */
async function cachedSnapshot(
  cacheDir: string,
  id: string,
  revision: string,
): Promise<{ dir: string } | { missing: string }> {
  const storage = storageFolder(cacheDir, id);
  let commit = revision;
  if (!COMMIT.test(revision)) {
    const ref = path.join(storage, "refs", revision);
    try {
      commit = (await readFile(ref, "utf8")).trim();
    } catch {
      return { missing: `no cached revision "${revision}" (${ref} does not exist)` };
    }
  }
  const dir = path.join(storage, "snapshots", commit);
  if (!(await isDir(dir))) return { missing: `snapshot folder ${dir} does not exist` };
  if (
    !(await exists(path.join(dir, "config.json"))) &&
    !(await exists(path.join(dir, "adapter_config.json")))
  ) {
    return { missing: `${dir} has no config.json` };
  }
  const index = path.join(dir, "model.safetensors.index.json");
  if (await exists(index)) {
    try {
      const weightMap = JSON.parse(await readFile(index, "utf8")).weight_map as Record<string, string>;
      for (const shard of new Set(Object.values(weightMap))) {
        if (!(await exists(path.join(dir, shard)))) return { missing: `${dir} lacks shard ${shard}` };
      }
    } catch (err) {
      return { missing: `${index} is unreadable (${(err as Error).message})` };
    }
  }
  return { dir };
}

/** Default progress printer: one line per second on stderr for files of 10 MB or more. */
function stderrProgress(): (p: DownloadProgress) => void {
  let last = 0;
  return (p) => {
    if (p.total < 10 * 1024 * 1024) return;
    const now = Date.now();
    const done = p.loaded >= p.total;
    if (!done && now - last < 1000) return;
    last = now;
    const mb = (n: number) => (n / 1048576).toFixed(1);
    const line = `downloading ${p.repo}/${p.file}: ${mb(p.loaded)}/${mb(p.total)} MB (${Math.floor((100 * p.loaded) / p.total)}%)`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}${done ? "\n" : ""}`);
    else process.stderr.write(`${line}\n`);
  };
}

/** Relative symlink from the snapshot to the blob (copy where symlinks are not allowed). */
async function linkBlob(blob: string, pointer: string): Promise<void> {
  await mkdir(path.dirname(pointer), { recursive: true });
  await rm(pointer, { force: true });
  try {
    await symlink(path.relative(path.dirname(pointer), blob), pointer);
  } catch {
    await copyFile(blob, pointer);
  }
}

interface RepoEntry {
  path: string;
  size: number;
  oid?: string;
  lfs?: { oid: string; size: number };
  xetHash?: string;
}

/** Downloads one file into blobs/ (verified) and links it from the snapshot. */
async function fetchFile(
  id: string,
  commit: string,
  entry: RepoEntry,
  storage: string,
  hub: { hubUrl: string; accessToken?: string; fetch?: typeof fetch },
  onProgress: (p: DownloadProgress) => void,
): Promise<void> {
  const pointer = path.join(storage, "snapshots", commit, entry.path);
  if (await exists(pointer)) return;
  // Blob names follow huggingface_hub: the LFS sha256 for large files, the git object id otherwise.
  const etag = entry.lfs?.oid ?? entry.xetHash ?? entry.oid;
  if (!etag) throw new Error(`${id}: the Hub listed no hash for ${entry.path}`);
  const blob = path.join(storage, "blobs", etag);
  if (!(await exists(blob))) {
    await mkdir(path.dirname(blob), { recursive: true });
    // Plain HTTP download (xet: false): one code path that works against any Hub-compatible server.
    const data = await downloadFile({ repo: id, path: entry.path, revision: commit, xet: false, ...hub });
    if (!data) throw new Error(`${id}: ${entry.path} not found at revision ${commit}`);
    const size = entry.lfs?.size ?? entry.size;
    const hash = entry.lfs ? createHash("sha256") : createHash("sha1").update(`blob ${size}\0`);
    const incomplete = `${blob}.${process.pid}.incomplete`; // per process: concurrent downloads never mix
    const fh = await open(incomplete, "w");
    let loaded = 0;
    try {
      onProgress({ repo: id, file: entry.path, loaded: 0, total: size });
      for await (const chunk of data.stream() as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        let off = 0;
        while (off < chunk.byteLength)
          off += (await fh.write(chunk, off, chunk.byteLength - off)).bytesWritten;
        loaded += chunk.byteLength;
        onProgress({ repo: id, file: entry.path, loaded, total: size });
      }
      // On disk before the rename: a cached blob is trusted without re-hashing, so a power loss must
      // not leave a renamed but truncated one.
      await fh.sync();
      await fh.close();
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(incomplete, { force: true });
      throw new Error(
        `${id}: download of ${entry.path} failed after ${loaded} bytes: ${(err as Error).message}`,
      );
    }
    const digest = hash.digest("hex");
    const expected = entry.lfs?.oid ?? entry.oid;
    if (loaded !== size || (expected && digest !== expected)) {
      await rm(incomplete, { force: true });
      throw new Error(
        `${id}: download of ${entry.path} is corrupt: got ${loaded} bytes with hash ${digest}, ` +
          `the Hub lists ${size} bytes with hash ${expected}`,
      );
    }
    await rename(incomplete, blob);
  }
  await linkBlob(blob, pointer);
}

function explainHubError(err: unknown, id: string, revision: string, endpoint: string): Error {
  if (err instanceof HubApiError) {
    if (err.statusCode === 401 || err.statusCode === 403) {
      // The Hub also answers 401 for ids that do not exist, so both causes are named.
      return new Error(
        `${id}: access denied by ${endpoint} (HTTP ${err.statusCode}): the id is misspelt, or the model is private ` +
          "or gated (accept its terms on the Hub and set HF_TOKEN to an access token).",
      );
    }
    if (err.statusCode === 404) {
      return new Error(
        `${id}: not a local folder, and model or revision "${revision}" not found on ${endpoint} (HTTP 404): ${err.message}`,
      );
    }
    return new Error(`${id}: Hub request failed (HTTP ${err.statusCode}): ${err.message}`);
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** True for errors where the server could not be reached at all (as opposed to an HTTP error). */
function isNetworkError(err: unknown): boolean {
  return (
    err instanceof TypeError &&
    /fetch failed|network|ECONN|ENOTFOUND|EAI_AGAIN/i.test(`${err.message} ${err.cause ?? ""}`)
  );
}

/**
 * Returns a local folder holding the model: a local folder is used as is; a Hub id
 * ("org/name") is downloaded into the Hugging Face cache (only the files a model needs) and its
 * snapshot folder is returned. Offline mode (`offline` or `HF_HUB_OFFLINE=1`) uses the cache only;
 * when the Hub cannot be reached, a complete cached snapshot is used with a warning.
 *
 * @example
 * const dir = await resolveModel("llm-jp/llm-jp-3-1.8b");          // downloads once, then cached
 * const dir2 = await resolveModel("./models/my-bert");              // a local folder, unchanged
 * const dir3 = await resolveModel("sbintuitions/modernbert-ja-130m", { offline: true });
 */
export async function resolveModel(idOrPath: string, options: ResolveModelOptions = {}): Promise<string> {
  if (await isDir(idOrPath)) return path.resolve(idOrPath);
  if (await exists(idOrPath))
    throw new Error(`${idOrPath} is a file; pass the model folder that contains it`);
  if (!isHubId(idOrPath)) {
    throw new Error(`${idOrPath}: no such folder, and not a Hugging Face model id ("org/name")`);
  }
  const id = idOrPath;
  const revision = options.revision ?? "main";
  const cacheDir = options.cacheDir ?? hubCacheDir();
  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? DEFAULT_HF_ENDPOINT).replace(/\/+$/, "");
  const offline = options.offline ?? envFlag("HF_HUB_OFFLINE");

  if (offline) {
    const cached = await cachedSnapshot(cacheDir, id, revision);
    if ("dir" in cached) return cached.dir;
    throw new Error(
      `${id}@${revision}: offline mode (HF_HUB_OFFLINE=1 or the offline option) and the model is not in the cache ${cacheDir}: ` +
        `${cached.missing}. Run once online to download it, or pass a local folder.`,
    );
  }

  const accessToken = options.token ?? (await defaultToken());
  const hub = { hubUrl: endpoint, accessToken, fetch: options.fetch };
  const storage = storageFolder(cacheDir, id);
  const onProgress = options.onProgress ?? stderrProgress();
  const wanted = options.files ?? isModelFile;

  let commit: string;
  let entries: RepoEntry[];
  try {
    const info = await modelInfo({ name: id, revision, additionalFields: ["sha"], ...hub });
    commit = info.sha;
    if (!commit || !COMMIT.test(commit))
      throw new Error(`${id}: the Hub returned no commit hash for "${revision}"`);
    entries = [];
    for await (const e of listFiles({ repo: id, revision: commit, recursive: true, ...hub })) {
      if (e.type === "file") entries.push(e);
    }
  } catch (err) {
    if (isNetworkError(err)) {
      const cached = await cachedSnapshot(cacheDir, id, revision);
      if ("dir" in cached) {
        process.stderr.write(
          `warning: cannot reach ${endpoint} (${(err as Error).message}); using the cached ${id}\n`,
        );
        return cached.dir;
      }
      throw new Error(
        `${id}: cannot reach ${endpoint} (${(err as Error).message}) and the model is not cached (${cached.missing}). ` +
          "Check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to work from the cache.",
      );
    }
    throw explainHubError(err, id, revision, endpoint);
  }

  const chosen = entries.filter((e) => wanted(e.path));
  if (!options.files && !chosen.some((e) => e.path.endsWith(".safetensors"))) {
    const pickles = entries.filter((e) => /\.(bin|pt|pth)$/.test(e.path)).map((e) => e.path);
    if (pickles.length) {
      throw new Error(
        `${id}: the repository has no safetensors weights, only PyTorch pickles (${pickles.join(", ")}), which toxlora does not read`,
      );
    }
  }
  if (revision !== commit) {
    // Remember which commit the branch/tag meant, so offline mode can find it later.
    await writeFileAtomic(path.join(storage, "refs", revision), commit);
  }
  await mkdir(path.join(storage, "snapshots", commit), { recursive: true });
  try {
    for (const e of chosen) await fetchFile(id, commit, e, storage, hub, onProgress);
  } catch (err) {
    throw explainHubError(err, id, revision, endpoint);
  }
  return path.join(storage, "snapshots", commit);
}
