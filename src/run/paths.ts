// Absolute local paths in a run's report (the run folder, its model folder, its data files) tell
// whoever reads the page how the machine is laid out. `toxlora report` (unless --show-paths) and
// serve's /report (unless --show-paths) show them relative to the run with these functions;
// `toxlora report --compare` and `toxlora cv` show those of every run relative to their page's folder.
import { readFile } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";

/** `html` with every absolute path of the run (see {@link runPaths}) made relative to the run. */
export async function pathsRelativeToRun(html: string, runDir: string): Promise<string> {
  return relativizePaths(html, runDir, await runPaths(runDir));
}

/**
 * `html`, a page about several runs written in `pageDir`, with their absolute paths (and `extra`
 * ones, e.g. the data file a cross-validation split) made relative to `pageDir`.
 */
export async function pathsRelativeToPage(
  html: string,
  pageDir: string,
  runDirs: readonly string[],
  extra: readonly string[] = [],
): Promise<string> {
  const paths = (await Promise.all(runDirs.map(runPaths))).flat();
  return relativizePaths(html, pageDir, [...paths, ...extra.filter((p) => isAbsolute(p))]);
}

/** The absolute paths a run's report may show: the run, its model folder and its data files. */
export async function runPaths(runDir: string): Promise<string[]> {
  const paths = [resolve(runDir)];
  const read = async (name: string): Promise<unknown> => {
    try {
      return JSON.parse(await readFile(join(runDir, name), "utf8"));
    } catch {
      return undefined;
    }
  };
  const collect = (v: unknown): void => {
    if (typeof v === "string" && isAbsolute(v)) paths.push(v);
    else if (Array.isArray(v)) v.forEach(collect);
    else if (v !== null && typeof v === "object") Object.values(v).forEach(collect);
  };
  const config = (await read("config.json")) as Record<string, unknown> | undefined;
  collect([config?.modelDir, config?.model, config?.train]);
  const manifest = (await read("manifest.json")) as { files?: unknown } | undefined;
  collect(manifest?.files);
  return paths;
}

/**
 * Each of `paths` in `html` (as written, JSON- or HTML-escaped) replaced by its path relative to
 * `runDir` (the run, or the folder of a page about several runs). One pass over the text: a relative path that still ends with an absolute one (a folder
 * outside the run becomes ../../that/folder) is never replaced again.
 */
export function relativizePaths(html: string, runDir: string, paths: readonly string[]): string {
  const escapeHtml = (t: string) =>
    t
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  const to = new Map<string, string>();
  for (const p of new Set(paths)) {
    const rel = relative(resolve(runDir), p) || ".";
    const json = JSON.stringify(p).slice(1, -1);
    const jsonRel = JSON.stringify(rel).slice(1, -1);
    to.set(p, rel);
    to.set(json, jsonRel);
    to.set(escapeHtml(p), escapeHtml(rel));
    to.set(escapeHtml(json), escapeHtml(jsonRel));
  }
  if (to.size === 0) return html;
  // Longest first, so a data file inside the run folder is not cut at the folder's path.
  const forms = [...to.keys()].sort((a, b) => b.length - a.length);
  const pattern = new RegExp(forms.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "g");
  return html.replace(pattern, (m) => to.get(m) ?? m);
}
