// Refusing to write an output over an input: `balance same.jsonl --out same.jsonl` would otherwise
// replace the data with its own subset. "The same file" is decided by the file system (device and
// inode, after following symlinks), so a symlink or a hard link to the input is caught as well as
// the same path spelled differently.
import { statSync } from "node:fs";
import { resolve } from "node:path";

/** An output that would overwrite one of the command's inputs. */
export class SameFileError extends Error {
  constructor(
    readonly output: string,
    readonly input: string,
  ) {
    const how = resolve(output) === resolve(input) ? "" : " (through a link or another path)";
    super(
      `refusing to write ${output}: it is the input ${input}${how}; writing it would destroy the input. ` +
        "Choose another output path.",
    );
    this.name = "SameFileError";
  }
}

/** Device and inode of `path` after following symlinks, or undefined when it does not exist. */
function identity(path: string): string | undefined {
  const s = statSync(path, { throwIfNoEntry: false, bigint: true });
  return s === undefined ? undefined : `${s.dev}:${s.ino}`;
}

/** True when `a` and `b` both exist and are the same file on disk. */
export function isSameFile(a: string, b: string): boolean {
  const ia = identity(a);
  return ia !== undefined && ia === identity(b);
}

/**
 * Throws {@link SameFileError} when any of `outputs` is (or links to) any of `inputs`. Inputs named
 * `-` (stdin) and missing files are ignored: an output that does not exist yet cannot be an input.
 * @example
 * refuseOutputOverInput([flags.out], [inputFile]); // before reading or writing anything
 */
export function refuseOutputOverInput(outputs: readonly string[], inputs: readonly string[]): void {
  const ins = inputs.filter((i) => i !== "-").map((i) => ({ path: i, id: identity(i) }));
  for (const out of outputs) {
    if (out === "-") continue;
    const id = identity(out);
    if (id === undefined) continue;
    const hit = ins.find((i) => i.id === id);
    if (hit) throw new SameFileError(out, hit.path);
  }
}
