// Small helpers for self-contained HTML pages: escaping, tables, inline SVG and the page frame.
// Every piece of user data (label names, texts, config values) goes through `escapeHtml`.
import { japaneseFontFiles, subsetFontWoff2 } from "../charts/fonts.js";

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value)
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** Marks a string as already-safe HTML (built from escaped parts). */
export interface Html {
  readonly html: string;
}

export function raw(html: string): Html {
  return { html };
}

/** Tagged template: interpolated values are escaped unless they are `Html` (or arrays of them). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] as string;
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] as string);
  });
  return raw(out);
}

function render(v: unknown): string {
  if (v === null || v === undefined || v === false) return "";
  if (Array.isArray(v)) return v.map(render).join("");
  if (typeof v === "object" && "html" in v) return (v as Html).html;
  return escapeHtml(v);
}

/** A number for a table cell: fixed digits, "–" for null/NaN. */
export function num(x: number | null | undefined, digits = 3): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);
}

export function pct(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "–" : `${(x * 100).toFixed(digits)}%`;
}

/**
 * A table; cells are escaped unless they are `Html`. Numeric-looking cells are right-aligned.
 * `footer` rows (e.g. averages) are set apart in bold.
 */
export function table(
  header: readonly unknown[],
  rows: readonly (readonly unknown[])[],
  className = "",
  footer: readonly (readonly unknown[])[] = [],
): Html {
  const cell = (tag: "th" | "td", v: unknown) => {
    // Alignment looks at the visible text (tags stripped from pre-built HTML).
    const text =
      typeof v === "object" && v !== null && "html" in v
        ? (v as Html).html.replace(/<[^>]*>/g, "")
        : String(v ?? "");
    const numeric = typeof v === "number" || /^[-+]?\d[\d,]*(\.\d+)?%?$|^–$/.test(text);
    return html`<${raw(tag)}${raw(numeric ? ' class="n"' : "")}>${v}</${raw(tag)}>`;
  };
  return html`<table${raw(className ? ` class="${escapeHtml(className)}"` : "")}>
<thead><tr>${header.map((h) => cell("th", h))}</tr></thead>
<tbody>${rows.map((r) => html`<tr>${r.map((v) => cell("td", v))}</tr>\n`)}${footer.map(
    (r) => html`<tr class="avg">${r.map((v) => cell("td", v))}</tr>\n`,
  )}</tbody>
</table>`;
}

/**
 * Makes an SVG safe to inline next to other SVGs: every `id` (clip paths, gradients) gets a
 * per-chart prefix so two charts never share one, and the XML prologue, if any, is dropped.
 */
export function inlineSvg(svg: string, prefix: string): Html {
  const body = svg.replace(/^<\?xml[^>]*>\s*/, "");
  const ids = new Set<string>();
  for (const m of body.matchAll(/\sid="([^"]+)"/g)) ids.add(m[1] as string);
  if (ids.size === 0) return raw(body);
  const safe = prefix.replace(/[^A-Za-z0-9_-]/g, "_");
  const rename = (id: string) => (ids.has(id) ? `${safe}-${id}` : id);
  return raw(
    body
      .replace(/(\sid=")([^"]+)(")/g, (_, a, id, b) => a + rename(id) + b)
      .replace(/url\(#([^)]+)\)/g, (_, id) => `url(#${rename(id)})`)
      .replace(/(href=")#([^"]+)(")/g, (_, a, id, b) => `${a}#${rename(id)}${b}`),
  );
}

/**
 * Family name of the font embedded in each page (a subset of the bundled Noto Sans JP). A name of
 * its own, so it never mixes with a Noto Sans JP the viewer may have installed.
 */
export const PAGE_FONT_FAMILY = "toxlora Noto Sans JP";

/** Styles shared by the run report and the comparison page. */
export const PAGE_CSS = `
:root { --fg: #1d1d1f; --muted: #666; --line: #ddd; --accent: #2b5fad; --bad: #c0392b; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fafafa;
  font: 15px/1.55 "${PAGE_FONT_FAMILY}", system-ui, -apple-system, "Hiragino Sans", "Hiragino Kaku Gothic ProN",
    "Yu Gothic UI", Meiryo, "Noto Sans JP", "Noto Sans CJK JP", sans-serif; }
header { background: #1f2d3d; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #c9d3de; font-size: 13px; }
nav { padding: 8px 28px; background: #eef1f5; border-bottom: 1px solid var(--line); font-size: 14px; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
main { padding: 8px 28px 40px; max-width: 1400px; }
h2 { margin-top: 34px; border-bottom: 2px solid #1f2d3d; padding-bottom: 4px; font-size: 19px; }
h3 { margin-top: 24px; font-size: 16px; }
.ja { color: var(--muted); font-weight: normal; font-size: 0.9em; margin-left: 6px; }
.note { color: var(--muted); font-size: 13px; }
.warn { color: var(--bad); }
.charts { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
figure { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
figure svg { display: block; max-width: 100%; height: auto; }
/* Chart text: the embedded font first (the PNG files use the same Noto Sans JP). */
figure svg text { font-family: "${PAGE_FONT_FAMILY}", "Noto Sans JP", "Hiragino Sans", "Yu Gothic UI", Meiryo,
  "Noto Sans CJK JP", system-ui, sans-serif; }
figcaption { font-size: 12px; color: var(--muted); padding-top: 4px; }
figcaption a { color: var(--accent); }
table { border-collapse: collapse; background: #fff; margin: 8px 0 14px; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.text { max-width: 640px; white-space: pre-wrap; word-break: break-word; }
tr.avg td { background: #f6f7f9; font-weight: 600; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); }
pre { background: #fff; border: 1px solid var(--line); padding: 10px; overflow: auto; font-size: 12.5px;
  max-height: 520px; }
.best { font-weight: 700; }
`;

/**
 * The frame of a self-contained page: no scripts, and no external styles, fonts or images. The
 * Japanese font travels inside the page (see `pageFontCss`), so text renders on machines without
 * one and with no network.
 */
export async function page(title: string, body: Html, extraCss = ""): Promise<string> {
  const fontCss = await pageFontCss(body.html);
  return `<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:">
<title>${escapeHtml(title)}</title>
<style>${fontCss}${PAGE_CSS}${extraCss}</style>
</head>
<body>
${body.html}
</body>
</html>
`;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };

/** The text a browser draws for an HTML fragment (inline SVG included): tags dropped, entities decoded. */
export function textContent(fragment: string): string {
  return fragment
    .replace(/<!--[\s\S]*?-->/g, "")
    .replace(/<(style|script)\b[\s\S]*?<\/\1>/gi, "")
    .replace(/<[^>]*>/g, "")
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (entity, name: string) => {
      if (name[0] !== "#") return ENTITIES[name.toLowerCase()] ?? entity;
      const cp =
        name[1] === "x" || name[1] === "X" ? Number.parseInt(name.slice(2), 16) : Number(name.slice(1));
      return cp <= 0x10ffff ? String.fromCodePoint(cp) : entity;
    });
}

const PRINTABLE_ASCII = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).join("");

/**
 * The characters a font for this fragment must cover, sorted by code point: every character of its
 * text content plus printable ASCII (cheap, and covers anything a viewer types or the page's
 * punctuation). Line breaks and tabs are left out (they have no glyphs).
 */
export function pageCharacters(fragment: string): string {
  const chars = new Set(PRINTABLE_ASCII);
  for (const ch of textContent(fragment)) if (ch >= " ") chars.add(ch);
  return [...chars].sort((a, b) => (a.codePointAt(0) as number) - (b.codePointAt(0) as number)).join("");
}

// Text that is never bold: worst-error texts and JSON blocks, which hold most of a report's kanji.
// Left out of the bold face's subset to halve its size; everything else (headings, table headers,
// averages, chart titles) may be bold and is in both faces.
const NEVER_BOLD = /<pre>[^<]*<\/pre>|<div class="text">[^<]*<\/div>/g;

/**
 * `@font-face` rules for Noto Sans JP Regular and Bold, each cut down to the characters of `body`
 * and embedded as base64 WOFF2: all a page needs to show its Japanese text with no font installed.
 */
export async function pageFontCss(body: string): Promise<string> {
  const [regularFile, boldFile] = japaneseFontFiles() as [string, string];
  const [regular, bold] = await Promise.all([
    subsetFontWoff2(regularFile, pageCharacters(body)),
    subsetFontWoff2(boldFile, pageCharacters(body.replace(NEVER_BOLD, ""))),
  ]);
  const face = (font: Buffer, weight: number) =>
    `@font-face { font-family: "${PAGE_FONT_FAMILY}"; font-style: normal; font-weight: ${weight}; ` +
    `font-display: block; src: url("data:font/woff2;base64,${font.toString("base64")}") format("woff2"); }\n`;
  return face(regular, 400) + face(bold, 700);
}
