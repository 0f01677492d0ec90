import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { normalizeTweetText } from "../../src/sources/normalize.js";
import { parseTweetTime } from "../../src/sources/tweet.js";

describe("normalizeTweetText", () => {
  test("URLs and mentions become placeholders", () => {
    assert.equal(
      normalizeTweetText("@kana_01 見た？ https://t.co/AbC123 #アニメ"),
      "<USER> 見た? <URL> #アニメ", // NFKC also turns the full-width ？ into ?
    );
  });

  test("a URL glued to Japanese text stops at the first non-ASCII character", () => {
    assert.equal(normalizeTweetText("https://example.com/a?b=1今日は"), "<URL>今日は");
  });

  test("mentions need a word boundary; e-mail addresses are not mentions", () => {
    assert.equal(normalizeTweetText("mail a@b.jp こんにちは@user_x!"), "mail a@b.jp こんにちは<USER>!");
    assert.equal(normalizeTweetText("@abcdefghijklmnopq"), "@abcdefghijklmnopq", "16+ chars is not a handle");
  });

  test("NFKC: full-width ASCII, half-width kana, full-width @ and URL", () => {
    assert.equal(normalizeTweetText("ＡＢＣ１２３ ｱﾆﾒ"), "ABC123 アニメ");
    assert.equal(normalizeTweetText("＠ｕｓｅｒ ｈｔｔｐｓ：／／ｔ．ｃｏ／ｘ"), "<USER> <URL>");
  });

  test("emoji are kept, including sequences NFKC would rewrite", () => {
    const emoji = "😡🔥 👍🏽 👨‍👩‍👧 🇯🇵 1️⃣ 🆗 ™ ℹ️";
    assert.equal(normalizeTweetText(emoji), emoji);
    assert.equal(normalizeTweetText("最高😂ｗｗｗ"), "最高😂www");
  });

  test("HTML entities X escapes are decoded; whitespace collapsed", () => {
    assert.equal(normalizeTweetText("A &amp; B &lt;3\n\n  C&gt;"), "A & B <3 C>");
  });
});

describe("parseTweetTime", () => {
  test("archive / v1.1 format with offset", () => {
    assert.equal(parseTweetTime("Wed Oct 10 20:19:24 +0000 2018"), "2018-10-10T20:19:24.000Z");
    assert.equal(parseTweetTime("Thu May 02 09:00:00 +0900 2024"), "2024-05-02T00:00:00.000Z");
  });
  test("ISO and epoch", () => {
    assert.equal(parseTweetTime("2024-05-01T12:00:00.000Z"), "2024-05-01T12:00:00.000Z");
    assert.equal(parseTweetTime(1714564800), "2024-05-01T12:00:00.000Z");
    assert.equal(parseTweetTime("1714564800000"), "2024-05-01T12:00:00.000Z");
    assert.equal(parseTweetTime("not a date"), null);
    assert.equal(parseTweetTime(""), null);
  });
});
