// A report opened from disk (file://) in a real browser, Debian's chromium driven by playwright-core
// on a machine with no Japanese system font: Japanese text is drawn with the embedded font. Each
// checked element is screenshotted twice, from the report and from a copy with the @font-face
// rules removed (where the same text falls back to empty boxes), and the two must differ a lot;
// two screenshots of the same page are the control and must be identical. A screenshot of the
// report's top is saved as $TOXLORA_REPORT_SCREENSHOT, by default <tmpdir>/toxlora-report.png
// (and of the copy without fonts as $TOXLORA_REPORT_SCREENSHOT_NOFONT, when set).
// Without chromium this test fails: `npm run test:setup` installs it.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { pathToFileURL } from "node:url";
import type { BrowserContext, Page } from "playwright-core";
import { PAGE_FONT_FAMILY } from "../../src/html/html.js";
import { buildReport } from "../../src/report/report.js";
import { launchChromium } from "./chromium.js";
import { writeSyntheticRun } from "./synthetic-run.js";

const SCREENSHOT = process.env.TOXLORA_REPORT_SCREENSHOT ?? join(tmpdir(), "toxlora-report.png");

let dir: string;
let context: BrowserContext | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-report-browser-"));
});
after(async () => {
  await context?.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * How different two screenshots are: the share of pixels that differ clearly, out of the pixels
 * with ink (darker than the background) in either. Decoded and compared by the browser itself.
 */
async function difference(page: Page, a: Buffer, b: Buffer): Promise<number> {
  // Browser-side code as a string: this project compiles without the DOM typings.
  return (await page.evaluate(`(async ([a, b]) => {
    const load = async (b64) => {
      const img = new Image();
      img.src = "data:image/png;base64," + b64;
      await img.decode();
      return img;
    };
    const [ia, ib] = await Promise.all([load(a), load(b)]);
    const w = Math.max(ia.width, ib.width);
    const h = Math.max(ia.height, ib.height);
    const pixels = (img) => {
      const c = document.createElement("canvas");
      c.width = w;
      c.height = h;
      const g = c.getContext("2d");
      g.fillStyle = "#fff";
      g.fillRect(0, 0, w, h);
      g.drawImage(img, 0, 0);
      return g.getImageData(0, 0, w, h).data;
    };
    const pa = pixels(ia);
    const pb = pixels(ib);
    let ink = 0;
    let diff = 0;
    for (let i = 0; i < pa.length; i += 4) {
      const la = pa[i] + pa[i + 1] + pa[i + 2];
      const lb = pb[i] + pb[i + 1] + pb[i + 2];
      if (la < 600 || lb < 600) ink++;
      if (Math.abs(la - lb) > 150) diff++;
    }
    return ink === 0 ? 0 : diff / ink;
  })(${JSON.stringify([a.toString("base64"), b.toString("base64")])})`)) as number;
}

it("draws the report's Japanese text with the embedded font, opened from disk with no network", {
  timeout: 120_000,
}, async () => {
  // Japanese label names put Japanese text in bold headings and in chart titles and legends.
  const run = join(dir, "run");
  await writeSyntheticRun(run, { labels: ["卑猥", "差別的", "企業"], rows: 60, epochs: 2, stepsPerEpoch: 4 });
  const report = await buildReport(run);
  const html = await readFile(report, "utf8");
  // The same page without its fonts: where the machine's fonts have no Japanese, empty boxes.
  const withoutFont = join(dir, "no-font.html");
  const stripped = html.replace(/@font-face \{[^}]*\}\n/g, "");
  assert.ok(stripped.length < html.length - 10_000, "the font rules were removed");
  await writeFile(withoutFont, stripped);

  const browser = await launchChromium(join(dir, "profile"), {
    viewport: { width: 1280, height: 900 },
    locale: "ja-JP",
  });
  context = browser.context;
  const page = browser.page;
  const problems: string[] = [];
  page.on("console", (m) => {
    // A font blocked by the page's Content-Security-Policy would be reported here.
    if (m.type() === "error" || m.type() === "warning") problems.push(`console: ${m.text()}`);
  });
  page.on("request", (r) => {
    if (!/^(file|data):/.test(r.url())) problems.push(`request outside the page: ${r.url()}`);
  });

  // Chart text with Japanese: the loss chart's title (bold) and the F1 chart's legend (regular).
  const elements = [
    { name: "heading (regular)", selector: "#summary .ja", text: "評価のまとめ" },
    { name: "label heading (bold)", selector: "h3#label-1", text: "差別的" },
    {
      name: "table cell",
      selector: "tr:has(> td:first-child:text-is('企業')) > td:first-child",
      text: "企業",
    },
    { name: "chart title (bold SVG)", selector: "#chart-loss svg text:text-is('Loss / 損失')", text: "損失" },
    { name: "chart legend (SVG)", selector: "#chart-f1-by-epoch svg text:text-is('卑猥')", text: "卑猥" },
  ];
  const shots = async (url: string) => {
    await page.goto(url);
    await page.waitForLoadState("load");
    await page.evaluate("document.fonts.ready");
    const out: Buffer[] = [];
    for (const e of elements) {
      const el = page.locator(e.selector).first();
      assert.ok(((await el.textContent()) ?? "").includes(e.text), `${e.name}: ${e.selector}`);
      out.push(await el.screenshot());
    }
    return out;
  };

  const reportUrl = pathToFileURL(report).href;
  const withFont = await shots(reportUrl);
  // Both faces were decoded and are in use (a font the CSP blocked would be "error").
  const faces = (await page.evaluate(
    `[...document.fonts].map((f) => [f.family.replaceAll('"', ""), f.weight, f.status].join(" "))`,
  )) as string[];
  assert.deepEqual(faces.sort(), [`${PAGE_FONT_FAMILY} 400 loaded`, `${PAGE_FONT_FAMILY} 700 loaded`]);
  await page.evaluate("window.scrollTo(0, 0)");
  await page.screenshot({ path: SCREENSHOT });
  if (process.env.TOXLORA_REPORT_SCREENSHOT_NOFONT) {
    await page.goto(pathToFileURL(withoutFont).href);
    await page.screenshot({ path: process.env.TOXLORA_REPORT_SCREENSHOT_NOFONT });
  }
  assert.ok((await stat(SCREENSHOT)).size > 20_000);

  const again = await shots(reportUrl);
  const tofu = await shots(pathToFileURL(withoutFont).href);
  for (const [i, e] of elements.entries()) {
    const same = await difference(page, withFont[i] as Buffer, again[i] as Buffer);
    const changed = await difference(page, withFont[i] as Buffer, tofu[i] as Buffer);
    assert.equal(same, 0, `${e.name}: two renders of the report are identical`);
    assert.ok(changed > 0.3, `${e.name}: with and without the font differ (${changed.toFixed(2)})`);
  }
  assert.deepEqual(problems, []);
});
