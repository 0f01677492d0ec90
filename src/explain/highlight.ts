// How an explanation is drawn on a post, shared by the serve page's "why?" toggle (which builds the
// same parts in the browser: `highlightParts` is embedded in its script as source) and the run
// report's worst errors (rendered here as static HTML). Meaning never rests on colour alone: spans
// that raised the score are underlined solid, those that lowered it dashed, thicker for more; each
// carries its signed value in title/aria-label, and a ranked ▲/▼ list of the strongest follows.
// Strength is one of four classes (no inline styles), so both pages work under a strict CSP.
import { type Html, html } from "../html/html.js";

/** One stretch of an explained post (as in {@link ExplainedSpan}). */
export interface SpanAttribution {
  start: number;
  end: number;
  text: string;
  attribution: number;
}

/** A piece of the post: plain text between spans, a weak span, or a marked one. */
export interface HighlightPart {
  text: string;
  /** The span's place and value; null for text between spans (whitespace the tokenizer skipped). */
  span: { start: number; end: number; attribution: number } | null;
  /** Drawn as a mark when its share of the strongest span is ≥ 0.15. */
  mark: {
    sign: "up" | "down";
    /** 1–4: underline thickness in px and tint strength. */
    level: number;
    /** "raised the score +0.83" (Japanese and English): the value without colour. */
    title: string;
  } | null;
}

export interface Highlight {
  parts: HighlightPart[];
  /** The strongest spans, strongest first: `「犬」 +0.83 ▲`. */
  strongest: string[];
}

/**
 * Splits `text` into the parts a highlight draws. Written as one self-contained function without
 * named inner functions: the serve page runs its source (`highlightParts.toString()`) in the browser.
 */
export function highlightParts(text: string, tokens: readonly SpanAttribution[], top = 5): Highlight {
  const max = Math.max(1e-9, ...tokens.map((t) => Math.abs(t.attribution)));
  const parts: HighlightPart[] = [];
  let at = 0;
  for (const t of tokens) {
    if (t.start > at) parts.push({ text: text.slice(at, t.start), span: null, mark: null });
    const share = t.attribution / max;
    const value = (t.attribution >= 0 ? "+" : "−") + Math.abs(t.attribution).toFixed(2);
    parts.push({
      text: t.text,
      span: { start: t.start, end: t.end, attribution: t.attribution },
      mark:
        Math.abs(share) < 0.15
          ? null
          : {
              sign: share > 0 ? "up" : "down",
              level: Math.min(4, Math.max(1, Math.round(4 * Math.abs(share)))),
              title:
                (share > 0 ? "スコアを上げた / raised the score " : "スコアを下げた / lowered the score ") +
                value,
            },
    });
    at = Math.max(at, t.end);
  }
  if (at < text.length) parts.push({ text: text.slice(at), span: null, mark: null });
  const strongest = [...tokens]
    .sort((a, b) => Math.abs(b.attribution) - Math.abs(a.attribution))
    .slice(0, top)
    .map(
      (t) =>
        `「${t.text}」 ${t.attribution >= 0 ? "+" : "−"}${Math.abs(t.attribution).toFixed(2)}${t.attribution >= 0 ? " ▲" : " ▼"}`,
    );
  return { parts, strongest };
}

/** What the marks mean, under every group of highlights. */
export const HIGHLIGHT_LEGEND =
  "▲ 下線・着色はスコアを上げた部分（太いほど強い）、▼ 破線は下げた部分。値はロジットへの寄与（integrated gradients）。 / " +
  "▲ underlined: raised the score (thicker = more); ▼ dashed: lowered it. Values are contributions to the logit.";

/** Styles of a highlighted post (inside an element of class `why-label`). */
export const HIGHLIGHT_CSS = `
.why-label .post { font-size: 17px; line-height: 2; white-space: pre-wrap; word-break: break-word; margin: 6px 0; }
.why-label mark { background: transparent; color: inherit; padding: 1px 0; text-underline-offset: 4px; }
.why-label mark.up { background: rgba(217, 72, 15, var(--a)); text-decoration: underline solid #b83b0a var(--w); }
.why-label mark.down { background: rgba(43, 95, 173, var(--a)); text-decoration: underline dashed #2b5fad var(--w); }
.why-label mark.l1 { --a: 0.25; --w: 1px; }
.why-label mark.l2 { --a: 0.37; --w: 2px; }
.why-label mark.l3 { --a: 0.5; --w: 3px; }
.why-label mark.l4 { --a: 0.62; --w: 4px; }
.why-label ol { margin: 6px 0 4px; padding-left: 22px; font-size: 14px; }
`;

/**
 * A highlighted post as static HTML (for the report): every span is an element carrying its
 * `data-start`, `data-end` and `data-attribution`, marked ones as `<mark>`; then the ranked list.
 */
export function highlightHtml(text: string, tokens: readonly SpanAttribution[], top = 5): Html {
  const h = highlightParts(text, tokens, top);
  const parts = h.parts.map((p) => {
    if (!p.span) return p.text;
    const data = html` data-start="${p.span.start}" data-end="${p.span.end}" data-attribution="${p.span.attribution}"`;
    if (!p.mark) return html`<span${data}>${p.text}</span>`;
    const label = `${p.text} ${p.mark.title}`;
    return html`<mark class="${p.mark.sign} l${p.mark.level}"${data} title="${p.mark.title}" aria-label="${label}">${p.text}</mark>`;
  });
  return html`<p class="post">${parts}</p>
<ol>${h.strongest.map((s) => html`<li>${s}</li>`)}</ol>`;
}
