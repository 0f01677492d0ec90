// SentencePiece internals on small hand-made models: normalizer options, precompiled charsmap,
// Unigram / BPE / unknown handling, decoding, and the .model protobuf reader.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import protobuf from "protobufjs";
import { PrecompiledCharsmap } from "../../src/tokenizers/sentencepiece/charsmap.js";
import {
  PieceType,
  parseSentencePieceModel,
  type SpmModel,
  SpmModelType,
  type SpmNormalizerSpec,
} from "../../src/tokenizers/sentencepiece/model.js";
import { SentencePieceProcessor, SpmNormalizer } from "../../src/tokenizers/sentencepiece/sentencepiece.js";
import { buildCharsmap } from "./darts.js";
import { referenceTexts, textDigest } from "./texts.js";

function spec(over: Partial<SpmNormalizerSpec> = {}): SpmNormalizerSpec {
  return {
    name: "identity",
    precompiledCharsmap: new Uint8Array(0),
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
    ...over,
  };
}

function model(
  pieces: Array<[string, number, number?]>,
  over: { modelType?: number; byteFallback?: boolean; normalizer?: Partial<SpmNormalizerSpec> } = {},
): SpmModel {
  const all: Array<[string, number, number?]> = [
    ["<unk>", 0, PieceType.UNKNOWN],
    ["<s>", 0, PieceType.CONTROL],
    ["</s>", 0, PieceType.CONTROL],
    ...pieces,
  ];
  if (over.byteFallback) {
    for (let b = 0; b < 256; b++)
      all.push([`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, 0, PieceType.BYTE]);
  }
  return {
    pieces: all.map(([piece, score, type]) => ({ piece, score, type: type ?? PieceType.NORMAL })),
    trainerSpec: {
      modelType: over.modelType ?? SpmModelType.UNIGRAM,
      vocabSize: all.length,
      byteFallback: over.byteFallback ?? false,
      treatWhitespaceAsSuffix: false,
      splitDigits: false,
      unkId: 0,
      bosId: 1,
      eosId: 2,
      padId: -1,
      unkPiece: "<unk>",
      bosPiece: "<s>",
      eosPiece: "</s>",
      padPiece: "<pad>",
      unkSurface: " \u2047 ",
    },
    normalizerSpec: spec(over.normalizer),
  };
}

test("normalizer: dummy prefix, extra whitespace removal and escaping follow the spec flags", () => {
  assert.equal(new SpmNormalizer(spec()).normalize("  a  b \t c  "), "▁a▁b▁\t▁c");
  assert.equal(new SpmNormalizer(spec({ removeExtraWhitespaces: false })).normalize(" a  b "), "▁▁a▁▁b▁");
  assert.equal(new SpmNormalizer(spec({ addDummyPrefix: false })).normalize("a b"), "a▁b");
  assert.equal(new SpmNormalizer(spec({ escapeWhitespaces: false })).normalize("a  b"), " a b");
  assert.equal(new SpmNormalizer(spec()).normalize("   "), "");
  assert.equal(new SpmNormalizer(spec({ removeExtraWhitespaces: false })).normalize(" "), "▁▁");
  assert.equal(new SpmNormalizer(spec()).normalize(""), "");
  // whitespace as suffix: the dummy space goes to the end
  assert.equal(new SpmNormalizer(spec(), true).normalize("a b"), "a▁b▁");
});

test("charsmap: the double array finds the longest rule, replacements may be longer or empty", () => {
  const blob = buildCharsmap({ ｶ: "カ", ｶﾞ: "ガ", Ａ: "A", "\u3000": " ", "\u200b": "", "①": "(1)" });
  const map = new PrecompiledCharsmap(blob);
  const bytes = new TextEncoder().encode("ｶﾞ");
  assert.deepEqual(map.match(bytes, 0, bytes.length), [6, "ガ"]);
  assert.equal(map.shortest(bytes, 0, bytes.length), "カ");
  assert.equal(map.match(new TextEncoder().encode("B"), 0, 1), undefined);

  const n = new SpmNormalizer(spec({ name: "custom", precompiledCharsmap: blob }));
  // ｶﾞ → ガ (one rule), ｶ → カ, U+3000 → space (then collapsed), zero-width space removed, ① → (1)
  assert.equal(n.normalize("ｶﾞｶ\u3000\u3000Ａ\u200bB①"), "▁ガカ▁AB(1)");
  assert.equal(n.normalize("\u3000\u3000"), "");
  assert.throws(() => new PrecompiledCharsmap(new Uint8Array([200, 0, 0, 0, 1])), /does not fit/);
});

test("unigram: Viterbi picks the best total score; unknown characters merge or fall back to bytes", () => {
  const pieces: Array<[string, number]> = [
    ["▁", -2],
    ["a", -3],
    ["b", -3],
    ["ab", -4],
    ["▁ab", -5],
    ["▁a", -1],
  ];
  const sp = new SentencePieceProcessor(model(pieces));
  // ▁ab (-5) beats ▁a + b (-1 - 3 = -4)? no: -4 > -5, so ▁a b wins
  assert.deepEqual(
    sp.encodePieces("ab").map((p) => p.piece),
    ["▁a", "b"],
  );
  // unknown run "xy" becomes one <unk>
  assert.deepEqual(sp.encode("axyb"), [sp.pieceToId("▁a"), 0, sp.pieceToId("b")]);
  assert.equal(sp.decode(sp.encode("axyb")), "a \u2047 b");

  const fb = new SentencePieceProcessor(model(pieces, { byteFallback: true }));
  const ids = fb.encode("aé");
  assert.deepEqual(
    ids.map((id) => fb.idToPiece(id)),
    ["▁a", "<0xC3>", "<0xA9>"],
  );
  assert.equal(fb.decode(ids), "aé");
  // an incomplete byte sequence decodes to one U+FFFD per byte, like SentencePiece
  assert.equal(fb.decode([fb.pieceToId("<0xC3>") as number, fb.pieceToId("a") as number]), "\ufffda");
});

test("unigram: user-defined symbols always win and are not normalized; unused pieces are never produced", () => {
  const m = model([
    ["▁", -1],
    ["a", -1],
    ["b", -1],
    ["ab", -0.5],
    ["<x>", 0, PieceType.USER_DEFINED],
    ["aa", -0.1, PieceType.UNUSED],
  ]);
  const sp = new SentencePieceProcessor(m);
  assert.deepEqual(
    sp.encodePieces("ab<x>aa").map((p) => p.piece),
    ["▁", "ab", "<x>", "a", "a"],
  );
});

test("bpe: merges by piece score, leftmost first", () => {
  const sp = new SentencePieceProcessor(
    model(
      [
        ["▁", -1],
        ["a", -1],
        ["b", -1],
        ["c", -1],
        ["▁a", -2],
        ["bc", -3],
        ["▁ab", -4],
        ["ab", -5],
      ],
      { modelType: SpmModelType.BPE },
    ),
  );
  // ▁ a b c: best pair ▁a (-2), then bc (-3); "▁ab" needs a+b which no longer exist
  assert.deepEqual(
    sp.encodePieces("abc").map((p) => p.piece),
    ["▁a", "bc"],
  );
  assert.deepEqual(
    sp.encodePieces("ab").map((p) => p.piece),
    ["▁ab"],
  );
  assert.equal(sp.decode(sp.encode("abc abd")), "abc ab \u2047 ");
});

test("decode: control pieces vanish, the leading dummy space is removed", () => {
  const sp = new SentencePieceProcessor(
    model([
      ["▁", -1],
      ["▁a", -1],
      ["b", -1],
    ]),
  );
  assert.equal(sp.decode([1, sp.pieceToId("▁a") as number, sp.pieceToId("b") as number, 2]), "ab");
  assert.throws(() => sp.decode([99999]), /out of range/);
});

test("model file: the protobuf reader applies proto2 defaults and reports broken files", () => {
  // encode a ModelProto with only a few fields set, using a throw-away writer
  const w = protobuf.Writer.create();
  const piece = (p: string, score: number, type?: number): Uint8Array => {
    const pw = protobuf.Writer.create().uint32(10).string(p).uint32(21).float(score);
    if (type !== undefined) pw.uint32(24).int32(type);
    return pw.finish();
  };
  w.uint32(10).bytes(piece("<unk>", 0, 2));
  w.uint32(10).bytes(piece("▁hi", -1.5));
  // normalizer_spec { name: "identity", add_dummy_prefix: false }
  w.uint32(26).bytes(protobuf.Writer.create().uint32(10).string("identity").uint32(24).bool(false).finish());
  const m = parseSentencePieceModel(w.finish(), "tiny.model");
  assert.equal(m.pieces.length, 2);
  assert.equal(m.pieces[1].type, PieceType.NORMAL);
  assert.equal(m.pieces[1].score, -1.5);
  assert.equal(m.trainerSpec.modelType, SpmModelType.UNIGRAM);
  assert.equal(m.trainerSpec.bosId, 1);
  assert.equal(m.trainerSpec.padId, -1);
  assert.equal(m.normalizerSpec.addDummyPrefix, false);
  assert.equal(m.normalizerSpec.removeExtraWhitespaces, true);

  assert.throws(() => parseSentencePieceModel(new Uint8Array([10, 200]), "broken.model"), /broken\.model/);
  assert.throws(
    () => parseSentencePieceModel(new Uint8Array([]), "empty.model"),
    /empty\.model: .*no pieces/,
  );
  assert.throws(
    () => SentencePieceProcessor.fromBytes(wrap(piece("x", 0)), "nounk.model"),
    /nounk\.model: the model defines no UNKNOWN piece/,
  );
});

function wrap(pieceBytes: Uint8Array): Uint8Array {
  return protobuf.Writer.create().uint32(10).bytes(pieceBytes).finish();
}

// Models trained and encoded by the SentencePiece library itself (see fixtures/README.md).
// The texts come from test/fixtures/ plus the project's edge cases, assembled at run time (tokenizer-texts.ts).
const fixtures = new URL("./fixtures/", import.meta.url);
for (const name of ["unigram-suffix", "unigram-user-bf", "bpe-bf"]) {
  test(`SentencePiece reference: spm-${name}.model encodes and decodes every text as the library does`, (t) => {
    const texts = referenceTexts();
    const sp = SentencePieceProcessor.fromBytes(readFileSync(new URL(`spm-${name}.model`, fixtures)), name);
    const expected = JSON.parse(readFileSync(new URL(`spm-${name}.expected.json`, fixtures), "utf8")) as {
      ids: number[][];
      /** digest of decode(ids[i]), or null when that is texts[i] itself */
      decodedSha256: Array<string | null>;
    };
    assert.equal(expected.ids.length, texts.length);
    assert.equal(expected.decodedSha256.length, texts.length);
    const failures: string[] = [];
    texts.forEach((text, i) => {
      const ids = sp.encode(text);
      if (JSON.stringify(ids) !== JSON.stringify(expected.ids[i])) {
        failures.push(
          `#${i} ${JSON.stringify(text).slice(0, 40)}: got ${ids.map((id) => sp.idToPiece(id)).join("|")}`,
        );
      }
      const decoded = sp.decode(expected.ids[i]);
      const want = expected.decodedSha256[i];
      if (want === null ? decoded !== text : textDigest(decoded) !== want)
        failures.push(`#${i}: decode ${JSON.stringify(decoded)}`);
    });
    t.diagnostic(`spm-${name}: ${texts.length - failures.length}/${texts.length} texts exact`);
    assert.deepEqual(failures, []);
  });
}
