// Token offsets (Tokenizer.encodeWithOffsets, mergeSpans): for every fixture tokenizer (SentencePiece
// with byte fallback, user-defined symbols and whitespace-as-suffix; tokenizer.json WordPiece, byte-level
// BPE, Llama BPE with byte fallback, Unigram with a precompiled NFKC charsmap) and hard texts (emoji with
// ZWJ, half-width kana, URLs, combining marks, NFKC expansions), the grouped spans are in order, never
// overlap, and each one's normalized text is exactly what its tokens stand for.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { mergeSpans } from "../../src/tokenizers/offsets.js";
import { loadTokenizer, type Tokenizer, tokenizerFromJson } from "../../src/tokenizers/tokenizer.js";

const dir = new URL("./fixtures/", import.meta.url).pathname;
// hf-bytelevel-bpe's tiny vocabulary silently drops most bytes (BPE without unk), so its groups are
// only checked for order and coverage.
const FIXTURES = [
  "hf-bert-wordpiece.tokenizer.json",
  "hf-llama-bpe.tokenizer.json",
  "hf-unigram-metaspace.tokenizer.json",
  "spm-bpe-bf.model",
  "spm-unigram-suffix.model",
  "spm-unigram-user-bf.model",
];
const HARD = [
  "家族👨‍👩‍👧で見た👍🏽！",
  "ｶﾞｷﾞｸﾞ ﾊﾟﾋﾟﾌﾟ ｱｲｳ ＡＢＣ １２３ ㈱ ㌔ ﬁ ㍻",
  "詳細は https://example.com/a?b=c&d=e#f を見て @user",
  "e\u0301cole cafe\u0301 か\u3099 ア\u309a",
  "  先頭と末尾の空白  \t改行\nあり ",
];
const TEXTS = [...(JSON.parse(readFileSync(`${dir}edge-texts.json`, "utf8")) as string[]), ...HARD];
const WS = /[\p{White_Space}\u2581\u200b]/gu;

/** What the tokens of one group stand for, whitespace removed, or null if a token's text is unknown. */
function groupSurface(tok: Tokenizer, ids: number[]): string | null {
  const bytes: number[] = [];
  for (const id of ids) {
    const s = (tok as unknown as { core: { surface(id: number): unknown } }).core.surface(id);
    if (!(s instanceof Uint8Array)) return null;
    bytes.push(...s);
  }
  const text = new TextDecoder("utf-8", { fatal: false }).decode(Uint8Array.from(bytes));
  return text.includes("\ufffd") ? null : text.replace(WS, "").toLowerCase();
}

function check(
  tok: Tokenizer,
  name: string,
  text: string,
  maxLength?: number,
  exactGroups = true,
): { exact: number; all: number } {
  const enc = tok.encodeWithOffsets(text, { maxLength });
  assert.deepEqual(enc.ids, tok.encode(text, { maxLength }), `${name}: same ids as encode`);
  assert.equal(enc.offsets.length, enc.ids.length);
  const groups = mergeSpans(enc.offsets);
  let prevEnd = 0;
  let exact = 0;
  for (const [k, g] of groups.entries()) {
    assert.ok(g.start >= prevEnd && g.end >= g.start && g.end <= text.length, `${name}: ordered, disjoint`);
    prevEnd = g.end;
    const surface = groupSurface(
      tok,
      g.tokens.map((t) => enc.ids[t]),
    );
    // the last group of a cut text may hold only part of a grapheme cluster
    if (surface === null || !exactGroups || (enc.truncated && k === groups.length - 1)) continue;
    // the group's raw characters, normalized the way the tokenizer normalizes them, are its tokens' text
    const core = (tok as unknown as { core: { normalize(s: string): string } }).core;
    const seen = [
      ...new Intl.Segmenter("und", { granularity: "grapheme" }).segment(text.slice(g.start, g.end)),
    ]
      .map((s) => core.normalize(s.segment))
      .join("")
      .replace(WS, "")
      .toLowerCase();
    assert.equal(
      seen,
      surface,
      `${name} ${JSON.stringify(text)}: group ${JSON.stringify(text.slice(g.start, g.end))}`,
    );
    exact++;
  }
  // every token except special ones belongs to exactly one group
  const inGroups = groups.flatMap((g) => g.tokens).sort((a, b) => a - b);
  const expected = enc.offsets.flatMap((o, i) => (o === null ? [] : [i]));
  assert.deepEqual(inGroups, expected, `${name}: every non-special token in one group`);
  return { exact, all: groups.length };
}

for (const f of FIXTURES) {
  test(`offsets: ${f}`, async () => {
    const tok = await loadTokenizer(dir + f);
    let exact = 0;
    let all = 0;
    for (const t of TEXTS) {
      const r = check(tok, f, t);
      exact += r.exact;
      all += r.all;
    }
    // nearly every group is checked character by character (the others hold unknown tokens)
    assert.ok(exact >= 0.1 * all, `${f}: ${exact}/${all} groups checked`);
  });
}

test("offsets: a tokenizer that drops bytes still gets ordered, disjoint groups", async () => {
  const tok = await loadTokenizer(`${dir}hf-bytelevel-bpe.tokenizer.json`);
  for (const t of TEXTS) check(tok, "hf-bytelevel-bpe", t, undefined, false);
});

test("offsets: truncation covers only the start and says so", async () => {
  const tok = await loadTokenizer(`${dir}spm-unigram-user-bf.model`);
  const text = "家族👨‍👩‍👧で https://example.com を見た";
  const full = tok.encodeWithOffsets(text);
  assert.equal(full.truncated, false);
  const cut = tok.encodeWithOffsets(text, { maxLength: 8 });
  assert.equal(cut.truncated, true);
  assert.equal(cut.ids.length, 8);
  check(tok, "truncated", text, 8);
  const last = mergeSpans(cut.offsets).at(-1);
  assert.ok(last && last.end < text.length);
});

test("offsets: emoji + ZWJ and byte-fallback pieces of one character form one group", async () => {
  const tok = await loadTokenizer(`${dir}spm-unigram-user-bf.model`);
  const text = "見た👨‍👩‍👧！";
  const enc = tok.encodeWithOffsets(text);
  const groups = mergeSpans(enc.offsets).map((g) => text.slice(g.start, g.end));
  assert.ok(groups.includes("👨‍👩‍👧"), JSON.stringify(groups));
});

// A WordPiece tokenizer.json with an NFKC + lowercase normalizer and a BERT pre-tokenizer.
function nfkcWordPiece(): Tokenizer {
  const words = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "ガ",
    "##ギ",
    "abc",
    "##123",
    "ki",
    "##lo",
    "平",
    "##成",
  ];
  words.push("キ", "##ロ", "fi", "école", "が", ":", "/", "http", "##s", "x", "##yz");
  const vocab = Object.fromEntries(words.map((w, i) => [w, i]));
  return tokenizerFromJson({
    version: "1.0",
    added_tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].map((c, id) => ({
      id,
      content: c,
      special: true,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
    })),
    normalizer: { type: "Sequence", normalizers: [{ type: "NFKC" }, { type: "Lowercase" }] },
    pre_tokenizer: { type: "BertPreTokenizer" },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", vocab },
    post_processor: {
      type: "TemplateProcessing",
      single: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
      ],
      pair: [],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [2], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [3], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##" },
  });
}

test("offsets: NFKC undone (half-width kana, full-width letters, ligatures, ㍻, combining marks)", () => {
  const tok = nfkcWordPiece();
  const text = "ｶﾞｷﾞ ＡＢＣ１２３ ㌔ ﬁne ㍻ e\u0301cole か\u3099 ｈｔｔｐｓ：／／ xｙｚ";
  const enc = tok.encodeWithOffsets(text);
  const groups = mergeSpans(enc.offsets).map((g) => [
    text.slice(g.start, g.end),
    g.tokens.map((t) => tok.idToToken(enc.ids[t])).join(" "),
  ]);
  assert.deepEqual(groups, [
    ["ｶﾞ", "ガ"],
    ["ｷﾞ", "##ギ"],
    ["ＡＢＣ", "abc"],
    ["１２３", "##123"],
    ["㌔", "キ ##ロ"],
    ["ﬁne", "[UNK]"],
    ["㍻", "平 ##成"],
    ["e\u0301cole", "école"],
    ["か\u3099", "が"],
    ["ｈｔｔｐ", "http"],
    ["ｓ", "##s"],
    ["：", ":"],
    ["／", "/"],
    ["／", "/"],
    ["x", "x"],
    ["ｙｚ", "##yz"],
  ]);
});
