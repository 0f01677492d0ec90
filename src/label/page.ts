// The annotation page of `toxlora label serve`: one post at a time, the schema's categories as
// checkboxes, the overall label when the schema has one, a note, skip and back. Keyboard only is
// enough: digits toggle categories, q/w/e… choose the overall label, n goes to the note (Esc leaves
// it), s skips, Enter saves, Backspace goes back to the previous post to change its answer.
// Japanese first with English beside it, like `serve`'s page. The model's scores are not shown:
// they would anchor the annotators on what the model already thinks.
import { escapeHtml } from "../html/html.js";
import { BASE_CSS, FONT_PATH, LABEL_NAMES_JA } from "../serve/page.js";

/** Japanese names of LLM-jp's overall labels. */
const OVERALL_JA: Record<string, string> = {
  toxic: "有害",
  nontoxic: "無害",
  has_toxic_expression: "有害表現あり（判断が難しい）",
};

/** Keys that choose the overall label, in the schema's order. */
export const OVERALL_KEYS = ["q", "w", "e", "r", "t", "y"];

export interface LabelPageOptions {
  labels: readonly string[];
  overall: readonly string[];
  title?: string;
}

const CSS = `${BASE_CSS}header { background: #1f2d3d; color: #fff; padding: 12px 24px; display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap; }
header h1 { font-size: 20px; margin: 0; }
header .sub { color: #c9d3de; font-size: 13px; }
header #who { margin-left: auto; font-size: 14px; color: #c9d3de; }
header button.link { background: none; color: #9cc3ff; padding: 0 0 0 8px; font-weight: normal; font-size: 14px; }
main { max-width: 860px; margin: 0 auto; padding: 20px 24px 40px; }
.en { color: #666; font-weight: normal; font-size: 0.85em; }
.post { background: #fff; border: 1px solid #ccc; border-radius: 8px; padding: 16px 18px; font-size: 19px;
  line-height: 1.8; white-space: pre-wrap; word-break: break-word; min-height: 90px; }
.post-head { display: flex; gap: 12px; align-items: baseline; color: #666; font-size: 13px; margin-bottom: 6px; }
.editing { color: #b35c00; font-weight: 600; }
fieldset { border: 1px solid #ddd; border-radius: 8px; background: #fff; margin: 14px 0; padding: 8px 14px 10px; }
legend { font-weight: 600; padding: 0 6px; }
.choice { display: flex; align-items: center; gap: 10px; padding: 4px 0; cursor: pointer; }
.choice input { width: 18px; height: 18px; }
kbd { display: inline-block; min-width: 1.6em; text-align: center; font: 13px/1.4 ui-monospace, monospace;
  border: 1px solid #aaa; border-bottom-width: 2px; border-radius: 4px; padding: 0 4px; background: #fafafa; color: #333; }
textarea { width: 100%; min-height: 56px; padding: 8px; font: inherit; border: 1px solid #bbb; border-radius: 6px; }
.actions { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
button { font: inherit; font-weight: 600; padding: 7px 18px; border: 0; border-radius: 6px; background: #2b5fad; color: #fff; cursor: pointer; }
button.secondary { background: #e4e8ee; color: #1d1d1f; }
#status { color: #666; font-size: 14px; }
#status.error { color: #c0392b; }
.help { color: #555; font-size: 13px; margin-top: 18px; }
#name-form { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 18px; max-width: 460px; }
#name-form input { font: inherit; padding: 6px 8px; width: 100%; margin: 6px 0 12px; }
[hidden] { display: none !important; }
`;

// Runs in the browser. Only textContent and properties are set: no HTML is built from data.
const SCRIPT = `
const COOKIE = "toxlora_annotator";
function start() {
  const $ = (id) => document.getElementById(id);
  const boxes = [...document.querySelectorAll("input[data-label]")];
  const radios = [...document.querySelectorAll("input[name=overall]")];
  const note = $("note");
  let annotator = readName();
  let current = null; // {id, text, seq?}: seq is set when changing an earlier answer
  let busy = false;

  function readName() {
    for (const part of document.cookie.split(";")) {
      const [k, ...v] = part.trim().split("=");
      if (k === COOKIE) { try { return decodeURIComponent(v.join("=")); } catch { return ""; } }
    }
    return "";
  }
  function setStatus(message, isError) {
    $("status").textContent = message;
    $("status").className = isError ? "error" : "";
  }
  async function api(path, body) {
    const response = await fetch(path, body === undefined ? {} : {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const data = await response.json();
    if (!response.ok) throw new Error(data.error ? data.error.message : "HTTP " + response.status);
    return data;
  }
  function show(post, given) {
    current = post;
    $("post").textContent = post.text;
    $("post-id").textContent = "ID " + post.id;
    $("editing").hidden = !given;
    for (const b of boxes) b.checked = Boolean(given && given.labels && given.labels[b.dataset.label]);
    for (const r of radios) r.checked = Boolean(given && given.overall === r.value);
    note.value = (given && given.note) || "";
    $("work").hidden = false;
    $("done").hidden = true;
    document.body.dataset.postId = post.id;
    document.body.dataset.state = "post";
    note.blur();
  }
  async function showProgress() {
    const h = await api("/healthz");
    $("progress").textContent = "完了 " + h.complete + " / " + h.posts + " 件 · done " + h.complete + " of " + h.posts;
  }
  async function loadNext() {
    showProgress().catch(() => {});
    const post = await api("/api/next?annotator=" + encodeURIComponent(annotator));
    if (!post) {
      current = null;
      $("work").hidden = true;
      $("done").hidden = false;
      document.body.dataset.postId = "";
      document.body.dataset.state = "done";
      return;
    }
    show(post, null);
  }
  async function run(action, message) {
    if (busy) return;
    busy = true;
    try { await action(); setStatus(message, false); }
    catch (err) { setStatus("エラー / Error: " + err.message, true); }
    finally { busy = false; }
  }
  function answerBody(skip) {
    const body = { id: current.id, annotator };
    if (skip) { body.skip = true; }
    else {
      body.labels = {};
      for (const b of boxes) body.labels[b.dataset.label] = b.checked;
      const chosen = radios.find((r) => r.checked);
      if (chosen) body.overall = chosen.value;
    }
    if (note.value.trim() !== "") body.note = note.value;
    return body;
  }
  const save = (skip) => run(async () => {
    if (!current) return;
    await api("/api/answer", answerBody(skip));
    await loadNext();
  }, skip ? "スキップしました / Skipped" : "保存しました / Saved");
  const back = () => run(async () => {
    const before = current && current.seq !== undefined ? "&before=" + current.seq : "";
    const given = await api("/api/history?annotator=" + encodeURIComponent(annotator) + before);
    if (!given) throw new Error("これより前の回答はありません / No earlier answer");
    show({ id: given.id, text: given.text, seq: given.seq }, given);
  }, "前の回答を変更できます / You can change this earlier answer");

  function begin() {
    $("name-form").hidden = true;
    $("who-name").textContent = annotator;
    $("who").hidden = false;
    run(loadNext, "");
  }
  $("name-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("name").value.trim();
    if (!name) { setStatus("名前を入力してください / Please enter your name", true); return; }
    annotator = name;
    document.cookie = COOKIE + "=" + encodeURIComponent(name) + "; Path=/; Max-Age=31536000; SameSite=Strict";
    begin();
  });
  $("change-name").addEventListener("click", () => {
    $("work").hidden = true; $("done").hidden = true; $("who").hidden = true;
    $("name-form").hidden = false; $("name").value = annotator; $("name").focus();
    document.body.dataset.state = "name";
  });
  $("save").addEventListener("click", () => save(false));
  $("skip").addEventListener("click", () => save(true));
  $("back").addEventListener("click", back);

  document.addEventListener("keydown", (event) => {
    if ($("work").hidden && $("done").hidden) return; // the name form handles its own keys
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target === note) {
      if (event.key === "Escape") { note.blur(); event.preventDefault(); }
      else if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); save(false); }
      return;
    }
    if (event.key === "Backspace") { event.preventDefault(); back(); return; }
    if (!current) return;
    if (event.key === "Enter") { event.preventDefault(); save(false); return; }
    if (event.key === "s") { event.preventDefault(); save(true); return; }
    if (event.key === "n") { event.preventDefault(); note.focus(); return; }
    const digit = Number(event.key);
    if (/^[1-9]$/.test(event.key) && boxes[digit - 1]) {
      event.preventDefault();
      boxes[digit - 1].checked = !boxes[digit - 1].checked;
      return;
    }
    const radio = radios.find((r) => r.dataset.key === event.key);
    if (radio) { event.preventDefault(); radio.checked = !radio.checked; }
  });

  if (annotator) begin();
  else { $("name-form").hidden = false; $("name").focus(); document.body.dataset.state = "name"; }
}

document.fonts
  .load('16px "toxlora-jp"', "日本語")
  .catch(() => {})
  .then(() => {
    document.body.prepend(document.getElementById("page").content);
    start();
  });
`;

function displayName(label: string): string {
  const ja = LABEL_NAMES_JA[label];
  return ja ? `${escapeHtml(ja)} <span class="en">${escapeHtml(label)}</span>` : escapeHtml(label);
}

export function renderLabelPage(options: LabelPageOptions): string {
  const boxes = options.labels
    .map((label, j) => {
      const key = j < 9 ? `<kbd>${j + 1}</kbd> ` : "";
      return `<label class="choice">${key}<input type="checkbox" data-label="${escapeHtml(label)}" tabindex="-1"> ${displayName(label)}</label>`;
    })
    .join("\n");
  const overall = options.overall.length
    ? `<fieldset><legend>全体の判定 <span class="en">Overall (optional; by default from the categories)</span></legend>
${options.overall
  .map((v, k) => {
    const key = OVERALL_KEYS[k];
    const ja = OVERALL_JA[v];
    const name = ja ? `${escapeHtml(ja)} <span class="en">${escapeHtml(v)}</span>` : escapeHtml(v);
    return `<label class="choice">${key ? `<kbd>${key}</kbd> ` : ""}<input type="radio" name="overall" value="${escapeHtml(v)}" data-key="${key ?? ""}" tabindex="-1"> ${name}</label>`;
  })
  .join("\n")}
</fieldset>`
    : "";
  const title = options.title ? `<span class="sub">${escapeHtml(options.title)}</span>` : "";
  return `<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>toxlora — ラベル付け / labelling</title>
<link rel="preload" href="${FONT_PATH}" as="font" type="font/ttf" crossorigin>
<style>${CSS}</style>
</head>
<body data-state="loading">
<template id="page">
<header><h1>toxlora ラベル付け <span class="en" style="color:#c9d3de">labelling</span></h1>${title}
<span id="progress" class="sub" role="status"></span>
<span id="who" hidden>担当 / Annotator: <b id="who-name"></b><button type="button" class="link" id="change-name">変更 / change</button></span></header>
<main>
<form id="name-form" hidden>
<label for="name"><b>お名前</b> <span class="en">Your name (kept in a cookie; it is recorded with your answers)</span></label>
<input id="name" name="name" autocomplete="nickname" maxlength="64">
<button type="submit">始める / Start</button>
</form>
<section id="work" hidden>
<div class="post-head"><span id="post-id"></span><span id="editing" class="editing" hidden>前の回答を変更中 / Changing an earlier answer</span></div>
<div class="post" id="post" lang="ja"></div>
<fieldset><legend>カテゴリ <span class="en">Categories (check all that apply)</span></legend>
${boxes}
</fieldset>
${overall}
<label for="note"><kbd>n</kbd> メモ <span class="en">Note (optional; <kbd>Esc</kbd> to leave)</span></label>
<textarea id="note" maxlength="2000"></textarea>
<div class="actions">
<button type="button" id="save"><kbd>Enter</kbd> 保存 / Save</button>
<button type="button" class="secondary" id="skip"><kbd>s</kbd> スキップ / Skip</button>
<button type="button" class="secondary" id="back"><kbd>⌫</kbd> 戻る / Back</button>
<span id="status" role="status"></span>
</div>
</section>
<section id="done" hidden><p><b>ラベル付けする投稿はもうありません。ありがとうございました！</b><br>
<span class="en">Nothing left to label. Thank you!</span> <kbd>⌫</kbd> 戻る / Back</p></section>
<p class="help">キー: <kbd>1</kbd>–<kbd>9</kbd> カテゴリの切り替え、${options.overall.length ? `<kbd>q</kbd> <kbd>w</kbd> <kbd>e</kbd> 全体の判定、` : ""}<kbd>n</kbd> メモ、<kbd>s</kbd> スキップ、<kbd>Enter</kbd> 保存、<kbd>Backspace</kbd> 前の投稿に戻る<br>
<span class="en">Keys: 1–9 toggle a category${options.overall.length ? ", q/w/e the overall label" : ""}, n note, s skip, Enter save, Backspace back to the previous post.</span></p>
</main>
</template>
<noscript>このページには JavaScript が必要です / This page needs JavaScript. API: GET /api/next, POST /api/answer</noscript>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
