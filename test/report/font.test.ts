// The Japanese font embedded in report pages: a WOFF2 subset of the bundled Noto Sans JP holding
// exactly the page's characters. The embedded fonts are decoded back to TrueType (the same
// subsetter, keeping every glyph) and their character maps compared with the page's text.
// That a browser really draws the glyphs is checked in browser.test.ts.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import subsetFont from "subset-font";
import { japaneseFontFiles, readFontMetrics } from "../../src/charts/fonts.js";
import { PAGE_FONT_FAMILY, pageCharacters, textContent } from "../../src/html/html.js";
import { buildReport } from "../../src/report/report.js";
import { writeSyntheticRun } from "./synthetic-run.js";

/** The `@font-face` rules of a page: weight and font bytes. */
function embeddedFonts(html: string): { weight: number; mime: string; font: Buffer }[] {
  const faces = [...html.matchAll(/@font-face \{([^}]*)\}/g)].map((m) => m[1] as string);
  return faces.map((face) => {
    assert.ok(face.includes(`font-family: "${PAGE_FONT_FAMILY}"`), face.slice(0, 80));
    const src = /src: url\("data:([^;]+);base64,([A-Za-z0-9+/=]+)"\) format\("woff2"\)/.exec(face);
    assert.ok(src, "the face's source is a base64 data URL");
    return {
      weight: Number(/font-weight: (\d+)/.exec(face)?.[1]),
      mime: src[1] as string,
      font: Buffer.from(src[2] as string, "base64"),
    };
  });
}

/** Code points a font maps to glyphs, looked up among `candidates`. */
async function coverage(woff2: Buffer, candidates: Iterable<number>): Promise<Set<number>> {
  const ttf = await subsetFont(woff2, undefined, { keepAllGlyphs: true, targetFormat: "sfnt" });
  const metrics = readFontMetrics(ttf);
  return new Set([...candidates].filter((cp) => metrics.has(cp)));
}

/** Bidi mirror pairs (Unicode BidiMirroring.txt) among characters a page may contain. */
const MIRRORS = new Map(
  [
    "()",
    "<>",
    "[]",
    "{}",
    "≤≥",
    "«»",
    "〈〉",
    "《》",
    "「」",
    "『』",
    "【】",
    "（）",
    "［］",
    "｛｝",
  ].flatMap(([a, b]) => [
    [a as string, b as string],
    [b as string, a as string],
  ]),
);

const codePoints = (text: string) => [...text].map((ch) => ch.codePointAt(0) as number);
const sorted = (set: Iterable<number>) => [...set].sort((a, b) => a - b);

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-font-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("page text", () => {
  it("is the text a browser draws: tags dropped, entities decoded, SVG text included", () => {
    const fragment =
      '<h2 id="x">Summary<span class="ja">評価</span></h2><!-- 隠 --><p title="属性">a &amp; b &lt;c&gt; &#x5DEE;&#21029; &quot;x&quot;</p>' +
      '<svg><g><text font-weight="bold">損失</text></g></svg><style>.嘘 {}</style>';
    assert.equal(textContent(fragment), 'Summary評価a & b <c> 差別 "x"損失');
    const chars = pageCharacters(fragment);
    for (const ch of "評価差別損失 ~Az09") assert.ok(chars.includes(ch), ch);
    // Comments, attribute values and style sheets are not drawn.
    for (const ch of "隠属嘘") assert.ok(!chars.includes(ch), ch);
    // Sorted, no duplicates, no control characters.
    assert.equal(chars, [...new Set(chars)].join(""));
    assert.equal(chars[0], " ");
    assert.equal(pageCharacters("a\n\tb").length, 0x7f - 0x20);
  });
});

describe("report fonts", () => {
  it("embeds Regular and Bold as WOFF2 subsets covering exactly the page's characters", async () => {
    const run = join(dir, "run");
    // A rare character that appears only in a worst-error text (never bold) and one only in a
    // label name (bold in the label's heading).
    const texts = Array.from({ length: 90 }, (_, i) => `憂鬱な${i % 2 ? "広告" : "宣伝"}だ「差別」`);
    await writeSyntheticRun(run, { labels: ["obscene", "差別的", "企業"], texts, rows: 90 });
    const started = Date.now();
    const html = await readFile(await buildReport(run), "utf8");
    const seconds = (Date.now() - started) / 1000;

    const fonts = embeddedFonts(html);
    assert.deepEqual(
      fonts.map((f) => f.weight),
      [400, 700],
    );
    const [regularTtf, boldTtf] = japaneseFontFiles() as [string, string];
    for (const f of fonts) {
      assert.equal(f.mime, "font/woff2");
      assert.equal(f.font.subarray(0, 4).toString("latin1"), "wOF2", "WOFF2 signature");
      // The full TTF is 5.4 MB; a report's subset is a few tens of kilobytes.
      assert.ok(f.font.length < 150_000, `weight ${f.weight}: ${f.font.length} bytes`);
    }
    const total = fonts.reduce((s, f) => s + f.font.length, 0);
    assert.ok(total * 40 < (await stat(regularTtf)).size, `embedded fonts: ${total} bytes`);
    assert.ok(html.length < 1_000_000, `page: ${html.length} bytes`);

    // The regular face maps exactly the page's characters (those Noto Sans JP has at all).
    const body = html.slice(html.indexOf("<body>"));
    const pageChars = codePoints(pageCharacters(body));
    const fullRegular = readFontMetrics(regularTtf);
    const expected = pageChars.filter((cp) => fullRegular.has(cp));
    assert.ok(expected.length > 150, "the page has many distinct characters");
    assert.ok(codePoints("憂鬱差別的企業評価のまとめ損失").every((cp) => expected.includes(cp)));
    // Look well beyond the page: the whole Basic Multilingual Plane.
    const bmp = Array.from({ length: 0x10000 }, (_, i) => i);
    const regular = await coverage(fonts[0]?.font as Buffer, bmp);
    for (const cp of expected) assert.ok(regular.has(cp), `regular face has ${String.fromCodePoint(cp)}`);
    // HarfBuzz adds the mirror image of paired characters (for right-to-left text): the page has
    // "≥", so the subset also maps "≤". Nothing else is extra.
    const extra = sorted(regular).filter((cp) => !expected.includes(cp));
    assert.ok(expected.includes(0x2265) && !expected.includes(0x2264), "the page has ≥ but not ≤");
    for (const cp of extra) {
      const mirror = MIRRORS.get(String.fromCodePoint(cp));
      assert.ok(
        mirror && expected.includes(mirror.codePointAt(0) as number),
        `unexpected ${cp.toString(16)}`,
      );
    }
    assert.deepEqual(extra, [0x2264]);

    // The bold face: everything that may be bold (headings, table headers, chart titles), not the
    // worst-error texts.
    const fullBold = readFontMetrics(boldTtf);
    const bold = await coverage(fonts[1]?.font as Buffer, bmp);
    const mayBeBold = [
      ...html.matchAll(/<(h[1-6]|th)\b[^>]*>([\s\S]*?)<\/\1>/g),
      ...html.matchAll(/<text[^>]*font-weight="bold"[^>]*>([^<]*)<\/text>/g),
    ].flatMap((m) => codePoints(textContent(m.at(-1) as string)));
    assert.ok(codePoints("差別的企業損失").every((cp) => mayBeBold.includes(cp)));
    for (const cp of mayBeBold) {
      if (fullBold.has(cp)) assert.ok(bold.has(cp), `bold face has ${String.fromCodePoint(cp)}`);
    }
    assert.ok(!bold.has("鬱".codePointAt(0) as number), "worst-error text only in the regular face");
    assert.ok(bold.size < regular.size);

    // Generous bound: charts take most of the time, subsetting both faces well under a second.
    assert.ok(seconds < 30, `report took ${seconds.toFixed(1)} s`);
  });
});
