// Long and broken inputs: a text is cut to what the model reads before it is tokenized (a 20 MB
// line costs what its first characters cost), a row over --max-text-bytes stops the run naming its
// line before it is held whole, and bytes that are not UTF-8 are counted per line (or refused).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { readInputs } from "../../src/predict/io.js";
import { inputWarnings, predictFile } from "../../src/predict/predict.js";
import { encodeCapped } from "../../src/run/encode.js";
import { createServer } from "../../src/serve/server.js";
import { buildCharTokenizer } from "../../src/tokenizers/build.js";
import { loadTokenizer, type Tokenizer } from "../../src/tokenizers/tokenizer.js";
import { KeywordClassifier } from "../serve/keyword-classifier.js";
import { demoTexts } from "../train/helpers.js";

let dir: string;
let tok: Tokenizer;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-input-limits-"));
  await buildCharTokenizer(demoTexts(), { outDir: join(dir, "tok"), style: "bert" });
  tok = await loadTokenizer(join(dir, "tok"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function collect(path: string, opts: Parameters<typeof readInputs>[1] = {}) {
  const out = [];
  for await (const r of readInputs(path, opts)) out.push(r);
  return out;
}

describe("a text is cut before it is tokenized", () => {
  test("the same ids as tokenizing it whole, and only a prefix is tokenized", () => {
    const texts = demoTexts();
    const seen: number[] = [];
    // The tokenizer as encodeCapped sees it, recording how much text each encode call gets.
    const spy = {
      specialPrefix: tok.specialPrefix,
      specialSuffix: tok.specialSuffix,
      padId: tok.padId,
      encode: (t: string, o: object) => {
        seen.push(t.length);
        return tok.encode(t, o);
      },
    } as unknown as Tokenizer;
    for (const maxLength of [3, 16, 64, 512]) {
      for (const text of ["", "短い", texts[0] as string, texts.join(""), `${"😀".repeat(3000)}終`]) {
        const got = encodeCapped(spy, text, maxLength);
        const want = tok.encode(text, { maxLength });
        assert.deepEqual(got.ids, want, `maxLength ${maxLength}, ${text.length} chars`);
        const whole = tok.encode(text, { addSpecialTokens: false }).length;
        assert.equal(got.truncated, whole > maxLength - 2);
      }
    }
    seen.length = 0;
    const huge = (texts.join("") as string).repeat(200); // several MB
    const r = encodeCapped(spy, huge, 64);
    assert.equal(r.truncated, true);
    assert.equal(r.ids.length, 64);
    assert.ok(Math.max(...seen) < 10_000, `tokenized ${Math.max(...seen)} of ${huge.length} characters`);
  });
});

describe("--max-text-bytes", () => {
  test("a longer text stops the read, naming file and line; a long line is refused before it is whole", async () => {
    const file = join(dir, "long.jsonl");
    writeFileSync(file, `{"text":"ok"}\n{"text":"${"あ".repeat(400)}"}\n`);
    await assert.rejects(
      collect(file, { maxTextBytes: 1000 }),
      /long\.jsonl:2: field "text": the text is 1200 bytes, more than --max-text-bytes 1000/,
    );
    assert.equal((await collect(file, { maxTextBytes: 1200 })).length, 2);

    const big = join(dir, "big.txt");
    writeFileSync(big, `short\n${"x".repeat(20 * 2 ** 20)}\n`); // one 20 MB line
    const heap0 = process.memoryUsage().heapUsed;
    await assert.rejects(
      collect(big, { maxTextBytes: 2 ** 20 }),
      /big\.txt:2: the line is longer than any text/,
    );
    assert.ok(process.memoryUsage().heapUsed - heap0 < 16 * 2 ** 20, "the line was never held whole");
  });

  test("predictFile applies a 1 MiB default", async () => {
    const file = join(dir, "mb.txt");
    writeFileSync(file, `a\nb\n${"y".repeat(2 ** 20 + 1)}\n`);
    await assert.rejects(
      predictFile(new KeywordClassifier(), { input: file, out: join(dir, "mb.out.jsonl") }),
      /mb\.txt:3: .*--max-text-bytes 1048576/,
    );
  });
});

describe("invalid UTF-8", () => {
  const bytes = Buffer.concat([
    Buffer.from("一行目\n二行目\n"),
    Buffer.from([0x41, 0xff, 0x42, 0x0a]), // line 3: a lone 0xff
    Buffer.from("四行目\n"),
    Buffer.from([0xe3, 0x81, 0x0a]), // line 5: a character cut short
  ]);

  test("counted per line (file and line), or an error with --strict-utf8", async () => {
    const file = join(dir, "bad.txt");
    writeFileSync(file, bytes);
    const lines: number[] = [];
    const rows = await collect(file, { onInvalidUtf8: (l) => lines.push(l) });
    assert.deepEqual(lines, [3, 5]);
    assert.equal(rows[2]?.text, "A\uFFFDB");
    await assert.rejects(collect(file, { strictUtf8: true }), /bad\.txt:3: invalid UTF-8/);

    const r = await predictFile(new KeywordClassifier(), { input: file, out: join(dir, "bad.out.jsonl") });
    assert.equal(r.invalidUtf8Lines, 2);
    assert.equal(r.firstInvalidUtf8Line, 3);
    assert.match(
      inputWarnings(r, file).join("\n"),
      /2 lines of .*bad\.txt hold bytes that are not UTF-8.*first: line 3/,
    );
  });

  test("valid multi-byte characters split across reads are not reported", async () => {
    const text = Buffer.from("日本語のテキスト😀\n二行目\n");
    const oneByteAtATime = Readable.from(Array.from(text, (b) => Buffer.from([b])));
    const lines: number[] = [];
    const rows = await collect("-", { stdin: oneByteAtATime, onInvalidUtf8: (l) => lines.push(l) });
    assert.deepEqual(lines, []);
    assert.deepEqual(
      rows.map((r) => r.text),
      ["日本語のテキスト😀", "二行目"],
    );
  });

  test("serve counts bodies that are not UTF-8 in /healthz, and refuses them with --strict-utf8", async () => {
    for (const strictUtf8 of [false, true]) {
      const s = await createServer(new KeywordClassifier(), { port: 0, strictUtf8 });
      try {
        const body = Buffer.concat([Buffer.from('{"texts": ["a'), Buffer.from([0xff]), Buffer.from('b"]}')]);
        const r = await fetch(`${s.url}/v1/classify`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        const health = (await (await fetch(`${s.url}/healthz`)).json()) as { invalidUtf8Bodies: number };
        if (strictUtf8) {
          assert.equal(r.status, 400);
          assert.equal(((await r.json()) as { error: { code: string } }).error.code, "invalid_utf8");
        } else {
          assert.equal(r.status, 200);
          assert.equal(health.invalidUtf8Bodies, 1);
        }
      } finally {
        await s.close();
      }
    }
  });
});
