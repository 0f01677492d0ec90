// The layers of src/, bottom to top (README "Architecture" lists the same): a folder (or a file at
// the top of src/) may import only from layers below its own, never from a peer in its own layer or
// from above. Every import counts, `import type` and `await import()` included.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, posix, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import ts from "typescript";

const LAYERS: readonly (readonly string[])[] = [
  ["version.ts", "io", "quant"],
  ["tokenizers", "charts", "engine"],
  ["data", "html"],
  ["models"],
  ["run"],
  ["baseline", "explain"],
  ["train", "predict", "serve"],
  ["report", "label", "sources"],
  ["cluster", "demo"],
  ["cli"],
  ["index.ts"],
];

const SRC = resolve(import.meta.dirname, "../src");

/** The unit a src file belongs to: its top folder, or its own name at the top of src/. */
function unitOf(srcRelative: string): string {
  return srcRelative.split("/")[0];
}

function rankOf(unit: string): number {
  return LAYERS.findIndex((layer) => layer.includes(unit));
}

interface Violation {
  file: string;
  imports: string;
  why: string;
}

/** Every relative import of `file` (path relative to src/) that does not point down. */
function layerViolations(file: string, text: string): Violation[] {
  const from = unitOf(file);
  const out: Violation[] = [];
  for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
    if (!fileName.startsWith(".")) continue;
    const target = posix.normalize(posix.join(posix.dirname(file), fileName));
    if (target.startsWith("..")) {
      out.push({ file, imports: fileName, why: "reaches outside src/" });
      continue;
    }
    const to = unitOf(target.replace(/\.js$/, ".ts"));
    if (to === from) continue;
    const [rf, rt] = [rankOf(from), rankOf(to)];
    if (rf < 0 || rt < 0) out.push({ file, imports: fileName, why: `${rf < 0 ? from : to} is in no layer` });
    else if (rt >= rf)
      out.push({ file, imports: fileName, why: `${from} (layer ${rf + 1}) imports ${to} (layer ${rt + 1})` });
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sourceFiles(join(dir, e.name))
      : e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")
        ? [join(dir, e.name)]
        : [],
  );
}

describe("architecture", () => {
  const files = sourceFiles(SRC).map((f) => relative(SRC, f).split("\\").join("/"));

  it("imports point down the layers", () => {
    const bad = files.flatMap((f) => layerViolations(f, readFileSync(join(SRC, f), "utf8")));
    assert.deepEqual(
      bad.map((v) => `${v.file} -> ${v.imports}: ${v.why}`),
      [],
    );
  });

  it("every folder of src/ sits in exactly one layer", () => {
    const units = [...new Set(files.map(unitOf))].sort();
    for (const u of units)
      assert.equal(LAYERS.flat().filter((x) => x === u).length, 1, `${u}: place it in one layer`);
    for (const u of LAYERS.flat())
      assert.ok(units.includes(u), `${u} is listed but src/ has no such folder or file`);
  });

  it("catches an import going up, sideways, or out of any layer", () => {
    assert.equal(layerViolations("io/atomic.ts", 'import { train } from "../train/trainer.js";').length, 1);
    assert.equal(layerViolations("train/x.ts", 'const m = await import("../predict/predict.js");').length, 1);
    assert.equal(layerViolations("models/x.ts", 'import type { Scored } from "../run/types.js";').length, 1);
    assert.equal(layerViolations("run/x.ts", 'export { a } from "../nowhere/a.js";').length, 1);
    assert.equal(
      layerViolations("train/x.ts", 'import { b } from "../run/b.js";\nimport { c } from "./c.js";').length,
      0,
    );
  });
});
