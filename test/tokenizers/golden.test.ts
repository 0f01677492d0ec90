// Golden encodings made by the SentencePiece library itself (see test/fixtures/tokenizers/llm-jp/SOURCE):
// every line must be reproduced exactly, by the .model readers and by the tokenizer.json reader.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { loadTokenizer } from "../../src/tokenizers/tokenizer.js";
import { fixture } from "../fixture.js";

const dir = pathToFileURL(`${fixture("tokenizers/llm-jp")}/`);

interface GoldenRow {
  text: string;
  ids: number[];
  pieces: string[];
}

function readGolden(name: string): GoldenRow[] {
  return readFileSync(new URL(name, dir), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l, i) => {
      const row = JSON.parse(l) as GoldenRow;
      assert.ok(
        typeof row.text === "string" && Array.isArray(row.ids),
        `${name}:${i + 1}: text and ids expected`,
      );
      return row;
    });
}

const cases = [
  { tokenizer: "llm-jp-tokenizer-100k.ver3.0b1.model", golden: "golden-ver3.0b1.jsonl" },
  { tokenizer: "code10k_en20k_ja30k.ver2.1.model", golden: "golden-ver2.1.jsonl" },
  // the Hugging Face conversion of the v2.1 model must give the same ids as SentencePiece
  { tokenizer: "code10k_en20k_ja30k.ver2.1_hf_fast.tokenizer.json", golden: "golden-ver2.1.jsonl" },
];

for (const c of cases) {
  test(`golden: ${c.tokenizer} reproduces every line of ${c.golden}`, async (t) => {
    const tok = await loadTokenizer(new URL(c.tokenizer, dir).pathname);
    const rows = readGolden(c.golden);
    assert.ok(rows.length >= 400, "the golden file should have hundreds of lines");
    const failures: string[] = [];
    let exact = 0;
    let byteFallbackLines = 0;
    for (const [i, row] of rows.entries()) {
      const ids = tok.encode(row.text, { addSpecialTokens: false });
      if (JSON.stringify(ids) === JSON.stringify(row.ids)) exact++;
      else
        failures.push(
          `line ${i + 1} ${JSON.stringify(row.text)}: got ${JSON.stringify(ids)}, want ${JSON.stringify(row.ids)}`,
        );
      // the piece strings agree too
      const pieces = ids.map((id) => tok.idToToken(id));
      if (JSON.stringify(pieces) !== JSON.stringify(row.pieces))
        failures.push(`line ${i + 1}: pieces differ`);
      if (row.pieces.some((p) => /^<0x[0-9A-F]{2}>$/.test(p))) byteFallbackLines++;
    }
    t.diagnostic(
      `${c.tokenizer}: ${exact}/${rows.length} lines exact (${byteFallbackLines} use byte fallback)`,
    );
    assert.deepEqual(failures, []);
    assert.equal(exact, rows.length);
    assert.ok(byteFallbackLines > 0, "the golden set exercises byte fallback");
  });

  test(`golden: ${c.tokenizer} decodes every golden line back to its text`, async () => {
    const tok = await loadTokenizer(new URL(c.tokenizer, dir).pathname);
    const rows = readGolden(c.golden);
    const failures = rows
      .map((row, i) => ({ i, row, text: tok.decode(row.ids) }))
      .filter((r) => r.text !== r.row.text)
      .map((r) => `line ${r.i + 1}: ${JSON.stringify(r.text)} != ${JSON.stringify(r.row.text)}`);
    assert.deepEqual(failures, []);
  });
}
