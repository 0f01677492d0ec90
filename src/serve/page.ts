// The page `toxlora serve` shows at `/`: paste a text, press the button, see one bar per category
// with its probability, highlighted when it reaches the category's threshold. With "why?" on, each
// category above its threshold also shows the post with the stretches that raised its score marked
// (tinted and underlined, thicker for more; those that lowered it dashed) and a list of the
// strongest ones with their signed values, so the meaning never rests on colour alone. Everything is inline
// (HTML, CSS, a little JavaScript); the only other request is the API call, plus the bundled
// Japanese font when the machine has none (served by the same server).
import { HIGHLIGHT_CSS, HIGHLIGHT_LEGEND, highlightParts } from "../explain/highlight.js";
import { escapeHtml } from "../html/html.js";

/** Japanese names of the LLM-jp Toxicity Dataset categories, shown next to the label names. */
export const LABEL_NAMES_JA: Record<string, string> = {
  obscene: "わいせつ",
  discriminatory: "差別",
  violent: "暴力",
  illegal: "違法",
  personal: "個人",
  corporate: "企業",
  others: "その他",
};

export interface PageOptions {
  labels: readonly string[];
  thresholds: readonly number[];
  /** Shown in the header, e.g. the run directory's name. */
  title?: string;
  /** Link the run's report (served at /report). */
  hasReport?: boolean;
}

/** URL path of the bundled font. */
export const FONT_PATH = "/assets/noto-sans-jp.ttf";

/** The font, box model and body text both app pages (`serve`, `label serve`) start from. */
export const BASE_CSS = `
@font-face { font-family: "toxlora-jp"; src: local("Noto Sans JP"), local("NotoSansJP-Regular"),
  url("${FONT_PATH}") format("truetype"); font-display: block; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; color: #1d1d1f;
  font: 16px/1.6 system-ui, -apple-system, "Hiragino Sans", "Hiragino Kaku Gothic ProN", "Yu Gothic UI", Meiryo,
    "Noto Sans CJK JP", "toxlora-jp", sans-serif; }
`;

const CSS = `${BASE_CSS}header { background: #1f2d3d; color: #fff; padding: 14px 24px; display: flex; align-items: baseline;
  gap: 16px; flex-wrap: wrap; }
header h1 { font-size: 20px; margin: 0; }
header .run { color: #c9d3de; font-size: 13px; }
header a { color: #9cc3ff; margin-left: auto; font-size: 14px; }
main { max-width: 860px; margin: 0 auto; padding: 20px 24px 40px; }
label.prompt { display: block; font-weight: 600; margin-bottom: 6px; }
.en { color: #666; font-weight: normal; font-size: 0.85em; }
textarea { width: 100%; min-height: 130px; padding: 10px; font: inherit; border: 1px solid #bbb;
  border-radius: 6px; resize: vertical; background: #fff; }
.actions { display: flex; align-items: center; gap: 14px; margin: 10px 0 22px; }
button { font: inherit; font-weight: 600; padding: 8px 22px; border: 0; border-radius: 6px; background: #2b5fad;
  color: #fff; cursor: pointer; }
button:disabled { background: #8aa4cc; cursor: wait; }
#status { color: #666; font-size: 14px; }
#status.error { color: #c0392b; }
.bars { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 10px 16px; }
.bar-row { display: grid; grid-template-columns: 170px 1fr 70px; align-items: center; gap: 12px;
  padding: 7px 0; border-bottom: 1px solid #eee; }
.bar-row:last-child { border-bottom: 0; }
.bar-row .name { font-weight: 600; line-height: 1.25; }
.track { position: relative; height: 18px; background: #eceff3; border-radius: 4px; overflow: hidden; }
.fill { height: 100%; width: 0; background: #9fb3c8; transition: width 0.25s; }
@media (prefers-reduced-motion: reduce) { .fill { transition: none; } }
.th { position: absolute; top: 0; bottom: 0; width: 2px; background: #333; opacity: 0.55; }
.val { text-align: right; font-variant-numeric: tabular-nums; }
.bar-row.above .fill { background: #d9480f; }
.bar-row.above .name, .bar-row.above .val { color: #b83b0a; }
#summary { margin: 14px 2px 0; font-weight: 600; }
.legend { color: #666; font-size: 13px; margin-top: 10px; }
code { background: #eceff3; padding: 1px 5px; border-radius: 4px; }
.why-toggle { display: flex; align-items: center; gap: 6px; font-size: 15px; }
.why-toggle input { width: 18px; height: 18px; }
.why-label { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 10px 16px; margin-top: 14px; }
.why-label h2 { font-size: 16px; margin: 4px 0 8px; }
.why-results .note { color: #666; font-size: 13px; }
${HIGHLIGHT_CSS}`;

// Runs in the browser. Only textContent and class names are set: no HTML is built from data.
const SCRIPT = `
function start() {
  const form = document.getElementById("form");
  const text = document.getElementById("text");
  const button = document.getElementById("classify");
  const status = document.getElementById("status");
  const summary = document.getElementById("summary");
  const rows = [...document.querySelectorAll(".bar-row")];
  const why = document.getElementById("why");
  const whyBox = document.getElementById("why-results");

  function setStatus(message, isError) {
    status.textContent = message;
    status.className = isError ? "error" : "";
  }

  async function classify() {
    const value = text.value;
    if (value.trim() === "") { setStatus("テキストを入力してください / Please enter a text", true); return; }
    button.disabled = true;
    setStatus("判定中… / Classifying…", false);
    const started = performance.now();
    try {
      const response = await fetch("/v1/classify", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ texts: [value] }),
      });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error ? body.error.message : "HTTP " + response.status);
      const result = body.results[0];
      const above = [];
      for (const row of rows) {
        const label = row.dataset.label;
        const p = result.probs[label];
        const hit = result.decisions[label];
        row.dataset.prob = String(p);
        row.dataset.above = String(hit);
        row.classList.toggle("above", hit);
        row.querySelector(".fill").style.width = (p * 100).toFixed(1) + "%";
        row.querySelector(".val").textContent = (p * 100).toFixed(1) + "%";
        if (hit) above.push(row.dataset.display);
      }
      summary.textContent = above.length
        ? "しきい値を超えたカテゴリ / Above threshold: " + above.join("、")
        : "しきい値を超えたカテゴリはありません / No category above its threshold";
      whyBox.replaceChildren();
      if (why.checked) {
        const flagged = rows.filter((r) => r.dataset.above === "true").map((r) => r.dataset.label);
        if (flagged.length === 0) {
          whyBox.append(note("しきい値を超えたカテゴリがないので説明はありません / Nothing above its threshold to explain"));
        } else {
          setStatus("理由を計算中… / Explaining…", false);
          await explainFlagged(value, flagged);
        }
      }
      document.body.dataset.state = "done";
      setStatus("完了 / Done (" + Math.round(performance.now() - started) + " ms)", false);
    } catch (err) {
      document.body.dataset.state = "error";
      setStatus("エラー / Error: " + err.message, true);
    } finally {
      button.disabled = false;
    }
  }

  function note(message) {
    const p = document.createElement("p");
    p.className = "note";
    p.textContent = message;
    return p;
  }

  ${highlightParts.toString()}

  async function explainFlagged(value, labels) {
    const response = await fetch("/v1/explain", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: value, labels }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : "HTTP " + response.status);
    for (const e of body.explanations) {
      const row = rows.find((r) => r.dataset.label === e.label);
      const section = document.createElement("section");
      section.className = "why-label";
      section.dataset.label = e.label;
      const h = document.createElement("h2");
      h.textContent = "なぜ / Why: " + (row ? row.dataset.display : e.label) + " " + (e.prob * 100).toFixed(1) + "%";
      const shown = highlightParts(e.text, e.tokens);
      const post = document.createElement("p");
      post.className = "post";
      for (const part of shown.parts) {
        if (!part.mark) { post.append(part.text); continue; }
        const m = document.createElement("mark");
        m.className = part.mark.sign + " l" + part.mark.level;
        m.title = part.mark.title;
        m.setAttribute("aria-label", part.text + " " + part.mark.title);
        m.textContent = part.text;
        post.append(m);
      }
      const list = document.createElement("ol");
      for (const line of shown.strongest) {
        const li = document.createElement("li");
        li.textContent = line;
        list.append(li);
      }
      section.append(h, post, list);
      if (e.truncated) section.append(note("長い投稿: 先頭 " + e.explainedChars + " 文字だけを説明しています / Long post: only its first " + e.explainedChars + " characters are explained"));
      whyBox.append(section);
    }
    whyBox.append(note(${JSON.stringify(HIGHLIGHT_LEGEND)}));
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); classify(); });
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); classify(); }
  });
  text.focus();
  document.body.dataset.state = "ready";
}

// Chrome can keep text that was laid out before a web font arrived in its fallback glyphs (empty
// boxes) even after the font loads. So the page stays in a <template> until the Japanese font is
// available (instantly from the machine's own fonts or the cache, else from this server).
document.fonts
  .load('16px "toxlora-jp"', "日本語")
  .catch(() => {})
  .then(() => {
    document.body.prepend(document.getElementById("page").content);
    start();
  });
`;

export function renderPage(options: PageOptions): string {
  const rows = options.labels
    .map((label, j) => {
      const ja = LABEL_NAMES_JA[label];
      const display = ja ? `${ja} (${label})` : label;
      const threshold = options.thresholds[j] ?? 0.5;
      const name = ja ? `${escapeHtml(ja)} <span class="en">${escapeHtml(label)}</span>` : escapeHtml(label);
      return `<div class="bar-row" data-label="${escapeHtml(label)}" data-display="${escapeHtml(display)}" data-threshold="${threshold}">
<div class="name">${name}</div>
<div class="track" title="threshold ${threshold.toFixed(3)}"><div class="fill"></div><div class="th" style="left:${(threshold * 100).toFixed(2)}%"></div></div>
<div class="val">–</div>
</div>`;
    })
    .join("\n");
  const title = options.title ? `<span class="run">${escapeHtml(options.title)}</span>` : "";
  const report = options.hasReport ? `<a href="/report">学習レポート / Training report</a>` : "";
  return `<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>toxlora — 有害表現の判定 / toxicity classifier</title>
<link rel="preload" href="${FONT_PATH}" as="font" type="font/ttf" crossorigin>
<style>${CSS}</style>
</head>
<body data-state="loading">
<template id="page">
<header><h1>toxlora <span class="en" style="color:#c9d3de">有害表現の判定 / toxicity classifier</span></h1>${title}${report}</header>
<main>
<form id="form">
<label class="prompt" for="text">テキスト <span class="en">Text</span></label>
<textarea id="text" name="text" placeholder="判定したい文章を貼り付けてください / Paste a text to classify"></textarea>
<div class="actions"><button id="classify" type="submit">判定する / Classify</button>
<label class="why-toggle"><input type="checkbox" id="why"> なぜ？ <span class="en">why?</span></label><span id="status" role="status"></span></div>
</form>
<div class="bars" id="bars">
${rows}
</div>
<p id="summary"></p>
<div id="why-results" class="why-results" aria-live="polite"></div>
<p class="legend">バーは各カテゴリの確率、縦線はそのしきい値です。しきい値以上のカテゴリは赤で表示されます。<br>
Each bar is a category's probability; the vertical line is its threshold. Categories at or above their threshold are shown in red.
API: <code>POST /v1/classify {"texts": [...]}</code>, <code>POST /v1/explain {"text": "..."}</code></p>
</main>
</template>
<noscript>このページには JavaScript が必要です / This page needs JavaScript. API: POST /v1/classify</noscript>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
