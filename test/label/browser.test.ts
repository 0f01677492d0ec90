// The annotation page in a real browser (Debian's chromium via playwright-core), keyboard only:
// the name, three posts labelled with digits, q/w/e, a note, Backspace back to change an answer,
// Enter to save; then the database holds exactly those answers. A screenshot is saved in the
// test's folder (and, with TOXLORA_SCREENSHOT=<file>, copied there). Without chromium this test
// fails: `npm run test:setup` installs it.
import assert from "node:assert/strict";
import { copyFile, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { llmjpToxicitySchema } from "../../src/data/schema.js";
import { createLabelServer, type RunningLabelServer } from "../../src/label/server.js";
import { LabelStore } from "../../src/label/store.js";
import { launchChromium } from "../report/chromium.js";

const POSTS = [
  "今期のアニメ、作画がすごく綺麗で毎週楽しみ！",
  "お前みたいな奴は消えろ、二度と来るな",
  "あの会社の製品は全部ゴミ、買うやつはバカ",
  "最終回で泣いた。スタッフの皆さんありがとう",
];

let dir: string;
let store: LabelStore;
let server: RunningLabelServer;
let context: BrowserContext | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-label-browser-"));
  const pool = join(dir, "pool.jsonl");
  await writeFile(pool, POSTS.map((text, i) => JSON.stringify({ id: `post-${i + 1}`, text })).join("\n"));
  store = LabelStore.open(join(dir, "labels.sqlite"), llmjpToxicitySchema());
  await store.importPool(pool);
  // Served in pool order, so the test knows which post comes when.
  store.setPlan(
    POSTS.map((_, i) => ({ post: i + 1, pick: "uncertain" as const })),
    "test",
  );
  server = await createLabelServer(store, { port: 0, title: "browser-test" });
});

after(async () => {
  await context?.close();
  await server.close();
  store.close();
  await rm(dir, { recursive: true, force: true });
});

async function postId(page: Page): Promise<string> {
  return (await page.getAttribute("body", "data-post-id")) ?? "";
}

/** Presses Enter and waits for the page to show another post (or the end). */
async function save(page: Page, from: string): Promise<void> {
  await page.keyboard.press("Enter");
  await page.waitForSelector(`body:not([data-post-id="${from}"])`);
}

it("labels three posts with the keyboard only and the database holds the answers", {
  timeout: 90_000,
}, async () => {
  const browser = await launchChromium(join(dir, "profile"), {
    viewport: { width: 900, height: 980 },
    locale: "ja-JP",
  });
  context = browser.context;
  const page = browser.page;
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });

  await page.goto(`${server.url}/`);
  await page.waitForSelector('body[data-state="name"]');
  await page.keyboard.type("山田");
  await page.keyboard.press("Enter");
  await page.waitForSelector('body[data-state="post"]');
  assert.equal(await postId(page), "post-1");
  assert.equal(await page.textContent("#post"), POSTS[0]);

  // Post 1: nothing toxic; overall "nontoxic" (w).
  await page.keyboard.press("w");
  await save(page, "post-1");
  // Post 2: violent (3) and personal (5), overall toxic (q), and a note (n … Esc).
  await page.keyboard.press("3");
  await page.keyboard.press("5");
  await page.keyboard.press("q");
  await page.keyboard.press("n");
  await page.keyboard.type("脅迫に近い");
  await page.keyboard.press("Escape");
  await save(page, "post-2");
  assert.equal(await postId(page), "post-3");
  // Backspace: back to post 2 with its answer; change personal (5) to others (7), save.
  await page.keyboard.press("Backspace");
  await page.waitForSelector('body[data-post-id="post-2"]');
  assert.equal(await page.isVisible("#editing"), true);
  const checked = await page.evaluate(
    `[...document.querySelectorAll("input[data-label]")].filter((b) => b.checked).map((b) => b.dataset.label)`,
  );
  assert.deepEqual(checked, ["violent", "personal"]);
  assert.equal(await page.inputValue("#note"), "脅迫に近い");
  await page.keyboard.press("5");
  await page.keyboard.press("7");
  await save(page, "post-2");
  assert.equal(await postId(page), "post-3", "back to the post that was waiting");
  // Post 3: corporate (6), overall toxic.
  await page.keyboard.press("6");
  await page.keyboard.press("q");
  await page.waitForTimeout(50);
  const shot = join(dir, "label-page.png");
  await page.screenshot({ path: shot, fullPage: true });
  await save(page, "post-3");
  assert.equal(await postId(page), "post-4");

  // The name is remembered: a reload goes straight to the waiting post.
  await page.reload();
  await page.waitForSelector('body[data-state="post"]');
  assert.equal(await postId(page), "post-4");
  assert.equal(await page.textContent("#who-name"), "山田");
  await page.waitForSelector("#progress:has-text('3 / 4')");

  const rows = store.db
    .prepare(
      "SELECT p.ext_id AS id, a.annotator, a.labels, a.overall, a.note FROM answers a JOIN posts p ON p.id = a.post ORDER BY a.seq",
    )
    .all() as {
    id: string;
    annotator: string;
    labels: string;
    overall: string | null;
    note: string | null;
  }[];
  const yes = (r: { labels: string }) =>
    Object.entries(JSON.parse(r.labels) as Record<string, number>)
      .filter(([, v]) => v === 1)
      .map(([k]) => k);
  assert.deepEqual(
    rows.map((r) => [r.id, r.annotator, yes(r), r.overall, r.note]),
    [
      ["post-1", "山田", [], "nontoxic", null],
      ["post-2", "山田", ["violent", "others"], "toxic", "脅迫に近い"],
      ["post-3", "山田", ["corporate"], "toxic", null],
    ],
  );
  assert.deepEqual(problems, []);
  assert.ok((await stat(shot)).size > 10_000);
  if (process.env.TOXLORA_SCREENSHOT) await copyFile(shot, process.env.TOXLORA_SCREENSHOT);
});
