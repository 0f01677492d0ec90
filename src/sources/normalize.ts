// Text normalisation for scoring tweets. The raw text is always kept beside the normalised one; this
// only produces the string a classifier sees.

/** Placeholder that replaces every URL. */
export const URL_PLACEHOLDER = "<URL>";
/** Placeholder that replaces every @mention. */
export const USER_PLACEHOLDER = "<USER>";

// X escapes these three characters in tweet text (API v2 and archives alike).
const HTML_ENTITIES: Record<string, string> = {
  "&amp;": "&",
  "&lt;": "<",
  "&gt;": ">",
  "&quot;": '"',
  "&#39;": "'",
};
const ENTITY_RE = /&(?:amp|lt|gt|quot|#39);/g;

// Only ASCII URL characters: Japanese text often runs straight on after a link ("https://t.co/xyz今日は").
const URL_RE = /https?:\/\/[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+/g;
// X handles: 1-15 word characters, not glued to a preceding letter/digit (so e-mail addresses survive).
const MENTION_RE = /(?<![A-Za-z0-9_])@[A-Za-z0-9_]{1,15}(?![A-Za-z0-9_])/g;

// Emoji and the characters that build emoji sequences (variation selectors, ZWJ, skin tones, keycaps,
// flag tags). NFKC would turn some of them into letters (🆗 → "OK", ™ → "TM", ℹ️ → "i"), so they are
// protected from it.
const EMOJI_RUN_RE =
  /(?:\p{Extended_Pictographic}|\p{Regional_Indicator}|\p{Emoji_Modifier}|[\u200D\uFE0E\uFE0F\u20E3\u{E0020}-\u{E007F}])+/gu;

/** NFKC on everything except emoji sequences. */
function nfkcKeepingEmoji(text: string): string {
  let out = "";
  let last = 0;
  for (const m of text.matchAll(EMOJI_RUN_RE)) {
    out += text.slice(last, m.index).normalize("NFKC") + m[0];
    last = m.index + m[0].length;
  }
  return out + text.slice(last).normalize("NFKC");
}

/**
 * Normalise a tweet for scoring: decode X's HTML entities, NFKC (full-width → ASCII, half-width kana →
 * full-width; emoji kept as they are), URLs → `<URL>`, @mentions → `<USER>`, whitespace runs → one space.
 */
export function normalizeTweetText(text: string): string {
  let s = text.replace(ENTITY_RE, (e) => HTML_ENTITIES[e] ?? e);
  // NFKC before matching so full-width "＠ｕｓｅｒ" and "ｈｔｔｐｓ：／／" are recognised too.
  s = nfkcKeepingEmoji(s);
  s = s.replace(URL_RE, URL_PLACEHOLDER);
  s = s.replace(MENTION_RE, USER_PLACEHOLDER);
  return s.replace(/\s+/g, " ").trim();
}
