// Types for the parts of the subset-font package (https://www.npmjs.com/package/subset-font) that
// toxlora uses; the package ships none.
declare module "subset-font" {
  export interface SubsetFontOptions {
    /** Output format (default: the input's). `truetype` is an alias of `sfnt`. */
    targetFormat?: "sfnt" | "truetype" | "woff" | "woff2";
    /** Four-letter OpenType layout features to keep (default: all). */
    keepFeatures?: string[];
    /** Keep every glyph instead of subsetting (then `text` must be empty or undefined). */
    keepAllGlyphs?: boolean;
    noHinting?: boolean;
    noLayoutClosure?: boolean;
    preserveNameIds?: number[];
    dropTables?: string[];
  }

  /** A subset of `font` (TTF/OTF, WOFF or WOFF2 bytes) with the glyphs needed for `text`. */
  export default function subsetFont(
    font: Uint8Array,
    text: string | null | undefined,
    options?: SubsetFontOptions,
  ): Promise<Buffer>;
}
