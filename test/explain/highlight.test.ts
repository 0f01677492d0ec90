// The highlight parts shared by the serve page and the report: marks by sign and strength, values in
// the titles, the ranked list; and the function's source runs on its own (the page embeds it).
import assert from "node:assert/strict";
import { test } from "node:test";
import { highlightHtml, highlightParts } from "../../src/explain/highlight.js";

const text = "a 犬b c";
const tokens = [
  { start: 0, end: 1, text: "a", attribution: 0.1 },
  { start: 2, end: 3, text: "犬", attribution: 2 },
  { start: 3, end: 4, text: "b", attribution: -1 },
  { start: 5, end: 6, text: "c", attribution: 0.6 },
];

test("parts cover the text; marks by sign, strength 1–4 by share of the strongest", () => {
  const h = highlightParts(text, tokens);
  assert.equal(h.parts.map((p) => p.text).join(""), text);
  assert.deepEqual(
    h.parts.map((p) => (p.mark ? `${p.mark.sign}${p.mark.level}` : null)),
    [null, null, "up4", "down2", null, "up1"],
  );
  assert.equal(h.parts[2]?.mark?.title, "スコアを上げた / raised the score +2.00");
  assert.equal(h.parts[3]?.mark?.title, "スコアを下げた / lowered the score −1.00");
  assert.deepEqual(h.strongest.slice(0, 2), ["「犬」 +2.00 ▲", "「b」 −1.00 ▼"]);
});

test("the source runs on its own, as the serve page's script runs it", () => {
  const standalone = new Function(`${highlightParts.toString()}; return highlightParts;`)();
  assert.deepEqual(standalone(text, tokens), highlightParts(text, tokens));
});

test("static HTML: each span with its offsets and value, text escaped, no inline styles", () => {
  const out = highlightHtml("<b>&", [{ start: 0, end: 3, text: "<b>", attribution: 1 }]).html;
  assert.match(
    out,
    /<mark class="up l4" data-start="0" data-end="3" data-attribution="1" title="[^"]+" aria-label="&lt;b&gt; [^"]+">&lt;b&gt;<\/mark>&amp;/,
  );
  assert.doesNotMatch(out, /style=/);
});
