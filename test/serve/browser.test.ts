// The page of `toxlora serve` in a real browser: Debian's chromium driven by playwright-core loads
// it, types a Japanese sentence, presses the button and reads the bars; then follows the report
// link. A screenshot is saved in the test's temporary folder (and, with TOXLORA_SCREENSHOT=<file>,
// copied there to look at). Without chromium this test fails: `npm run test:setup`
// installs it.
import assert from "node:assert/strict";
import { copyFile, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import type { BrowserContext } from "playwright-core";
import { buildReport } from "../../src/report/report.js";
import { createServer, type RunningServer } from "../../src/serve/server.js";
import { launchChromium } from "../report/chromium.js";
import { writeSyntheticRun } from "../report/synthetic-run.js";
import { KeywordClassifier } from "./keyword-classifier.js";

let dir: string;
let server: RunningServer;
let context: BrowserContext | undefined;
const classifier = new KeywordClassifier();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-browser-"));
  // A run report to link from the page (synthetic run with the classifier's labels).
  const run = join(dir, "run");
  await writeSyntheticRun(run, { labels: classifier.labels, rows: 30, epochs: 1, stepsPerEpoch: 3 });
  const reportPath = await buildReport(run);
  server = await createServer(classifier, { port: 0, reportPath, title: "keyword-test-run" });
});

after(async () => {
  await context?.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

it("loads the page, classifies a Japanese sentence, shows one bar per category, links the report", {
  timeout: 90_000,
}, async () => {
  // A fresh profile in the test's folder, deleted with it.
  const browser = await launchChromium(join(dir, "profile"), {
    viewport: { width: 900, height: 760 },
    locale: "ja-JP",
    reducedMotion: "reduce", // bars jump to their width, so the screenshot shows final values
  });
  context = browser.context;
  const page = browser.page;
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("request", (r) => {
    if (!r.url().startsWith(server.url)) problems.push(`request outside the server: ${r.url()}`);
  });

  await page.goto(`${server.url}/`);
  await page.waitForSelector('body[data-state="ready"]');
  assert.equal(await page.locator(".bar-row").count(), classifier.labels.length);

  // Pressing the button with no text asks for one and calls nothing.
  await page.click("#classify");
  assert.match((await page.textContent("#status")) ?? "", /テキストを入力してください/);
  assert.equal(classifier.calls.length, 0);

  const sentence = "あの会社の広告はエロいし、差別的な表現まである。";
  await page.fill("#text", sentence);
  await page.click("#classify");
  await page.waitForSelector('body[data-state="done"]');

  // Browser-side code as a string: this project compiles without the DOM typings.
  const bars = (await page.evaluate(`[...document.querySelectorAll(".bar-row")].map((r) => ({
    label: r.dataset.label,
    prob: Number(r.dataset.prob),
    above: r.classList.contains("above"),
    width: r.querySelector(".fill").style.width,
    value: r.querySelector(".val").textContent,
    color: getComputedStyle(r.querySelector(".fill")).backgroundColor,
  }))`)) as { label: string; prob: number; above: boolean; width: string; value: string; color: string }[];
  // The bars show what the classifier says for this sentence.
  const [expected] = await classifier.predict([sentence]);
  assert.deepEqual(classifier.calls.at(-2), [sentence], "the page sent the typed text");
  assert.deepEqual(
    bars.map((b) => b.label),
    classifier.labels,
  );
  bars.forEach((b, j) => {
    const p = expected?.probs[j] as number;
    assert.equal(b.prob, p, `${b.label} probability`);
    assert.ok(Math.abs(Number.parseFloat(b.width) - p * 100) < 0.051, `${b.label} bar width ${b.width}`);
    assert.equal(b.value, `${(p * 100).toFixed(1)}%`);
    assert.equal(b.above, expected?.decisions[j], `${b.label} highlighted iff above its threshold`);
  });
  assert.deepEqual(
    bars.filter((b) => b.above).map((b) => b.label),
    ["obscene", "discriminatory", "corporate"],
  );
  // Highlighted bars have their own colour.
  const above = bars.find((b) => b.above);
  const below = bars.find((b) => !b.above);
  assert.notEqual(above?.color, below?.color);
  assert.match(
    (await page.textContent("#summary")) ?? "",
    /わいせつ \(obscene\)、差別 \(discriminatory\)、企業 \(corporate\)/,
  );

  // The bundled Japanese font is served and usable (whatever fonts the machine has).
  const fontOk = await page.evaluate(`document.fonts
    .load('16px "toxlora-jp"', "差別")
    .then(() => document.fonts.check('16px "toxlora-jp"', "差別"))`);
  assert.equal(fontOk, true);

  const shot = join(dir, "serve.png");
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok((await stat(shot)).size > 10_000);
  if (process.env.TOXLORA_SCREENSHOT) await copyFile(shot, process.env.TOXLORA_SCREENSHOT);

  // The report link opens the run's report.
  await page.click('a[href="/report"]');
  await page.waitForLoadState("load");
  assert.match(await page.title(), /^toxlora report/);
  assert.ok((await page.locator("figure[data-chart] svg").count()) > 10);
  assert.deepEqual(problems, []);
});
