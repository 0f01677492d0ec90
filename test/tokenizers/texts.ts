// Test helper: the ordered list of texts the reference fixtures in fixtures/ were made from.
// The list is assembled at run time from the copies in test/fixtures/:
//   1. the `text` column of data/inspection-ai/subset.csv (437 texts, file order),
//   2. the `text` of every line of tokenizers/llm-jp/golden-ver3.0b1.jsonl (444 texts),
//   3. the project's own edge cases, fixtures/edge-texts.json (21 texts).
// The `*.expected.json` files are indexed by position in this list, so the counts are checked.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseCsv } from "../../src/sources/csv.js";
import { fixture } from "../fixture.js";

const SUBSET = fixture("data/inspection-ai/subset.csv");
const GOLDEN = fixture("tokenizers/llm-jp/golden-ver3.0b1.jsonl");
const EDGE = new URL("./fixtures/edge-texts.json", import.meta.url);

/** How many texts each part must have, so a changed source file fails loudly instead of shifting indices. */
export const TEXT_COUNTS = { subset: 437, golden: 444, edge: 21 } as const;

function subsetTexts(): string[] {
  const [header, ...rows] = parseCsv(readFileSync(SUBSET, "utf8"), SUBSET);
  const col = header?.fields.indexOf("text") ?? -1;
  if (col < 0) throw new Error(`${SUBSET}:1: no "text" column`);
  return rows.map((r) => {
    const text = r.fields[col];
    if (text === undefined) throw new Error(`${SUBSET}:${r.line}: field "text" is missing`);
    return text;
  });
}

function goldenTexts(): string[] {
  return readFileSync(GOLDEN, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l, i) => {
      const text = (JSON.parse(l) as { text?: unknown }).text;
      if (typeof text !== "string") throw new Error(`${GOLDEN}:${i + 1}: field "text" is not a string`);
      return text;
    });
}

function check(part: string, texts: string[], want: number): string[] {
  if (texts.length !== want)
    throw new Error(`reference texts: ${part} has ${texts.length} texts, want ${want}`);
  return texts;
}

let cached: string[] | undefined;

/** The 902 reference texts in fixture order (read once). */
export function referenceTexts(): string[] {
  cached ??= [
    ...check("subset.csv", subsetTexts(), TEXT_COUNTS.subset),
    ...check("golden-ver3.0b1.jsonl", goldenTexts(), TEXT_COUNTS.golden),
    ...check("edge-texts.json", JSON.parse(readFileSync(EDGE, "utf8")) as string[], TEXT_COUNTS.edge),
  ];
  return cached;
}

/**
 * The first 16 hex digits of the SHA-256 of a string's UTF-8. The fixtures store decoded texts this way:
 * a decoded text is the input text give or take a few characters, so storing it would copy the texts again.
 */
export function textDigest(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex").slice(0, 16);
}
