// The Japanese font for charts. The machine (and most CI runners) has no CJK system font, so
// Japanese text would render as empty boxes; Noto Sans JP ships as TTF files in an npm package
// (@expo-google-fonts/noto-sans-jp, SIL OFL), which resvg loads directly. The same files give
// Vega real text widths (read from the font's metric tables) so labels are laid out to fit.
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import subsetFont from "subset-font";

export const CHART_FONT_FAMILY = "Noto Sans JP";

/** Paths of the Noto Sans JP TTF files used for charts: [regular, bold]. */
export function japaneseFontFiles(): string[] {
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = dirname(require.resolve("@expo-google-fonts/noto-sans-jp"));
  } catch {
    throw new Error("the font package @expo-google-fonts/noto-sans-jp is not installed (run `npm install`)");
  }
  return [
    join(dir, "400Regular", "NotoSansJP_400Regular.ttf"),
    join(dir, "700Bold", "NotoSansJP_700Bold.ttf"),
  ];
}

/** Horizontal advance widths of a TrueType/OpenType font, per code point. */
export interface FontMetrics {
  unitsPerEm: number;
  /** Advance width in font units (the .notdef width for unmapped characters). */
  advance(codePoint: number): number;
  /** Whether the font maps the code point to a glyph (other than .notdef). */
  has(codePoint: number): boolean;
}

/**
 * Reads `head`, `hhea`, `hmtx` and `cmap` (formats 4 and 12) from a TTF/OTF file (a path, or the
 * file's bytes): just enough to measure text. See the OpenType spec for the table layouts.
 */
export function readFontMetrics(source: string | Uint8Array): FontMetrics {
  const file = typeof source === "string" ? source : "font";
  const buf = typeof source === "string" ? readFileSync(source) : Buffer.from(source);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const tables = new Map<string, number>();
  const numTables = view.getUint16(4);
  for (let i = 0; i < numTables; i++) {
    const rec = 12 + 16 * i;
    tables.set(buf.toString("latin1", rec, rec + 4), view.getUint32(rec + 8));
  }
  const table = (tag: string): number => {
    const off = tables.get(tag);
    if (off === undefined) throw new Error(`${file}: font has no '${tag}' table`);
    return off;
  };
  const unitsPerEm = view.getUint16(table("head") + 18);
  const numberOfHMetrics = view.getUint16(table("hhea") + 34);
  const hmtx = table("hmtx");
  const advanceOfGlyph = (glyph: number) => view.getUint16(hmtx + 4 * Math.min(glyph, numberOfHMetrics - 1));

  // Pick the best Unicode subtable: format 12 (full range) over format 4 (BMP).
  const cmap = table("cmap");
  let format4 = -1;
  let format12 = -1;
  for (let i = 0; i < view.getUint16(cmap + 2); i++) {
    const rec = cmap + 4 + 8 * i;
    const platform = view.getUint16(rec);
    const encoding = view.getUint16(rec + 2);
    const sub = cmap + view.getUint32(rec + 4);
    const unicode = platform === 0 || (platform === 3 && (encoding === 1 || encoding === 10));
    if (!unicode) continue;
    const format = view.getUint16(sub);
    if (format === 12) format12 = sub;
    else if (format === 4) format4 = sub;
  }
  const glyphOf = (cp: number): number => {
    if (format12 >= 0) {
      const groups = view.getUint32(format12 + 12);
      let lo = 0;
      let hi = groups - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const g = format12 + 16 + 12 * mid;
        if (cp < view.getUint32(g)) hi = mid - 1;
        else if (cp > view.getUint32(g + 4)) lo = mid + 1;
        else return view.getUint32(g + 8) + (cp - view.getUint32(g));
      }
      return 0;
    }
    if (format4 >= 0 && cp <= 0xffff) {
      const segX2 = view.getUint16(format4 + 6);
      const ends = format4 + 14;
      const starts = ends + segX2 + 2;
      const deltas = starts + segX2;
      const ranges = deltas + segX2;
      for (let s = 0; s < segX2; s += 2) {
        if (cp > view.getUint16(ends + s)) continue;
        const start = view.getUint16(starts + s);
        if (cp < start) return 0;
        const rangeOffset = view.getUint16(ranges + s);
        const delta = view.getInt16(deltas + s);
        if (rangeOffset === 0) return (cp + delta) & 0xffff;
        const glyph = view.getUint16(ranges + s + rangeOffset + 2 * (cp - start));
        return glyph === 0 ? 0 : (glyph + delta) & 0xffff;
      }
    }
    return 0;
  };
  const cache = new Map<number, number>();
  return {
    unitsPerEm,
    advance(cp: number): number {
      let w = cache.get(cp);
      if (w === undefined) {
        w = advanceOfGlyph(glyphOf(cp));
        cache.set(cp, w);
      }
      return w;
    },
    has: (cp: number) => glyphOf(cp) !== 0,
  };
}

let regularMetrics: FontMetrics | undefined;

/** Width in pixels of `text` set in Noto Sans JP Regular at `fontSize` px. */
export function measureText(text: string, fontSize: number): number {
  regularMetrics ??= readFontMetrics(japaneseFontFiles()[0] as string);
  let units = 0;
  for (const ch of text) units += regularMetrics.advance(ch.codePointAt(0) ?? 0);
  return (units / regularMetrics.unitsPerEm) * fontSize;
}

// OpenType features a browser applies to horizontal text by default, plus `tnum` (the pages ask
// for tabular numbers). Keeping only these stops the subsetter from pulling in every glyph the
// font's other features (vertical forms, traditional/expert variants, ...) could reach, which
// makes the subset two to three times smaller.
const PAGE_FEATURES = "ccmp locl rlig mark mkmk calt clig liga kern rvrn tnum".split(" ");

/**
 * A WOFF2 font holding only the glyphs for `text`, cut from a TTF file (HarfBuzz's subsetter,
 * run as WebAssembly from the subset-font package: nothing is downloaded).
 */
export async function subsetFontWoff2(file: string, text: string): Promise<Buffer> {
  return subsetFont(await readFile(file), text, { targetFormat: "woff2", keepFeatures: PAGE_FEATURES });
}
