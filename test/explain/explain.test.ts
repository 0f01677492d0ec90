// explain() end to end on a real run: a tiny model trained on a synthetic task where one token
// decides a label (faithfulness: most of the positive attribution lands on that token's span), the
// spans and completeness of the output, and one clear error for each kind of bad input.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createRng } from "../../src/data/random.js";
import { ExplainInputError, explain } from "../../src/explain/explain.js";
import { RunClassifier } from "../../src/predict/classifier.js";
import { createServer } from "../../src/serve/server.js";
import { train } from "../../src/train/trainer.js";
import { launchChromium } from "../report/chromium.js";
import { tinyModel } from "../train/helpers.js";

const KEY = "犬";
const FILLER = ["あ", "い", "う", "え", "お", "か", "き", "く", "け", "こ", "さ", "し", "猫", "鳥"];
let dir: string;
let clf: RunClassifier;

/** Label "dog" is 1 exactly when the text holds 犬; "bird" when it holds 鳥. */
function rows(n: number, seed: number) {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, i) => {
    const words = Array.from({ length: 4 + rng.int(8) }, () => rng.pick(FILLER));
    const dog = rng.next() < 0.4;
    if (dog) words.splice(rng.int(words.length + 1), 0, KEY);
    const text = words.join("");
    return { id: `s${i}`, text, dog: dog ? "yes" : "no", bird: text.includes("鳥") ? "yes" : "no" };
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "toxlora-explain-"));
  const data = rows(400, 3);
  writeFileSync(join(dir, "d.jsonl"), data.map((r) => `${JSON.stringify(r)}\n`).join(""));
  const model = await tinyModel(
    join(dir, "model"),
    [...data.map((r) => r.text), "ｶﾞ👍🏽 https://x.jp"],
    "llama",
    {
      hidden: 32,
      seed: 5,
    },
  );
  const r = await train(
    {
      model,
      data: join(dir, "d.jsonl"),
      labels: ["dog", "bird"],
      epochs: 8,
      batchSize: 16,
      lr: 1e-2,
      loraR: 8,
      loraAlpha: 16,
      loraDropout: 0,
      maxLength: 32,
      warmupRatio: 0.1,
      scheduler: "linear",
      testRatio: 0.2,
      validRatio: 0.1,
      out: join(dir, "run"),
    },
    { progress: "quiet" },
  );
  assert.ok(r.eval.perLabel.dog.f1 >= 0.9, `the model learnt the task (dog F1 ${r.eval.perLabel.dog.f1})`);
  clf = await RunClassifier.load(r.runDir, { threads: 1 });
});
after(async () => {
  await clf?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("faithfulness: ≥ 80 % of the positive attribution mass of 'dog' lands on 犬's span", async () => {
  const texts = rows(30, 99)
    .filter((r) => r.dog === "yes")
    .map((r) => r.text);
  const out = await explain(clf, texts, { labels: ["dog"], steps: 32 });
  assert.equal(out.length, texts.length);
  let onKey = 0;
  let positive = 0;
  for (const e of out) {
    assert.equal(e.label, "dog");
    for (const t of e.tokens) {
      if (t.attribution <= 0) continue;
      positive += t.attribution;
      if (t.text === KEY) onKey += t.attribution;
    }
  }
  const share = onKey / positive;
  console.log(`positive attribution on ${KEY}: ${(100 * share).toFixed(1)} % over ${out.length} texts`);
  assert.ok(share >= 0.8, `share ${share}`);
});

test("spans are in order, cover the text, add up to the logit change (completeness ≤ 0.02 at 64 steps)", async () => {
  const text = "あい犬 ｶﾞ👍🏽 https://x.jp 鳥";
  const out = await explain(clf, [text], { steps: 64 });
  assert.deepEqual(
    out.map((e) => e.label),
    ["dog", "bird"],
  );
  for (const e of out) {
    assert.equal(e.text, text);
    assert.ok(e.completenessError <= 0.02, `${e.label}: ${e.completenessError}`);
    assert.ok(Math.abs(e.prob - 1 / (1 + Math.exp(-e.logit))) < 1e-9);
    let end = 0;
    for (const t of e.tokens) {
      assert.ok(t.start >= end && t.end > t.start);
      assert.equal(t.text, text.slice(t.start, t.end));
      end = t.end;
    }
    // every non-space character is in a span
    const covered = e.tokens.map((t) => t.text).join("");
    assert.equal(covered, text.replace(/\s/g, ""));
    assert.equal(e.truncated, false);
    assert.equal(e.explainedChars, text.length);
  }
  const gxi = await explain(clf, [text], { labels: ["bird"], method: "grad-x-input" });
  assert.equal(gxi[0].method, "grad-x-input");
  assert.equal(gxi[0].tokens.length, out[1].tokens.length);
});

test("bad input: empty text, unknown label, too long, not a transformer run", async () => {
  await assert.rejects(
    explain(clf, ["犬", "  "]),
    (e: Error) => e instanceof ExplainInputError && /text 2 is empty/.test(e.message),
  );
  await assert.rejects(
    explain(clf, ["犬"], { labels: ["cat"] }),
    /label "cat" is not one of this run's labels \(dog, bird\)/,
  );
  const long = "あいうえお犬かきくけこ".repeat(5);
  const [e] = await explain(clf, [long], { labels: ["dog"], maxLength: 8, steps: 8 });
  assert.equal(e.truncated, true);
  assert.ok(e.explainedChars > 0 && e.explainedChars < long.length);
  assert.ok(e.tokens.every((t) => t.end <= e.explainedChars));
  const plain = { labels: ["dog"], thresholds: [0.5], predict: async () => [], close: async () => {} };
  await assert.rejects(explain(plain, ["犬"]), /explain needs a transformer run/);
});

const ROOT = new URL("../../", import.meta.url).pathname;
function toxlora(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", ...args],
      { cwd: ROOT },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

test("cli: --text view without colour lists the strongest spans; --json; --input/--out; one-line errors", async () => {
  const run = clf.runDir;
  const view = await toxlora(
    "explain",
    "--run",
    run,
    "--text",
    "あい犬かき",
    "--label",
    "dog",
    "--steps",
    "16",
  );
  assert.equal(view.code, 0, view.stderr);
  assert.match(view.stdout, /^dog {2}p=0\.\d{3} {2}logit/);
  assert.ok(!view.stdout.includes("\u001b["), "not a TTY: no colour");
  assert.match(view.stdout, /\+\d\.\d{3} {2}"犬" {2}\[2, 3\)/);
  const json = await toxlora("explain", "--run", run, "--text", "犬", "--json", "--method", "grad-x-input");
  const lines = json.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => l.label),
    ["dog", "bird"],
  );
  for (const k of ["text", "label", "prob", "logit", "baselineLogit", "completenessError", "tokens"])
    assert.ok(k in lines[0]);
  const input = join(dir, "posts.jsonl");
  writeFileSync(
    input,
    `${JSON.stringify({ id: "a", text: "犬だ" })}\n${JSON.stringify({ id: "b", text: "鳥" })}\n`,
  );
  const out = join(dir, "explained.jsonl");
  const file = await toxlora(
    "explain",
    "--run",
    run,
    "--input",
    input,
    "--out",
    out,
    "--label",
    "dog",
    "--quiet",
  );
  assert.equal(file.code, 0, file.stderr);
  const rowsOut = readFileSync(out, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    rowsOut.map((r) => [r.id, r.label, r.text]),
    [
      ["a", "dog", "犬だ"],
      ["b", "dog", "鳥"],
    ],
  );
  const bad = await toxlora("explain", "--run", run, "--text", "犬", "--label", "cat");
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr.trim(), `toxlora: label "cat" is not one of this run's labels (dog, bird)`);
  writeFileSync(input, `${JSON.stringify({ text: "犬" })}\n${JSON.stringify({ text: " " })}\n`);
  const empty = await toxlora("explain", "--run", run, "--input", input, "--out", out);
  assert.equal(empty.stderr.trim(), `toxlora: ${input}:2: the text is empty: nothing to explain`);
  const long = await toxlora(
    "explain",
    "--run",
    run,
    "--text",
    "あいうえお犬かきくけこ".repeat(4),
    "--max-length",
    "8",
    "--steps",
    "4",
  );
  assert.equal(long.code, 0, long.stderr);
  assert.match(
    long.stderr,
    /--text: longer than the token limit: only its first \d+ of 44 characters are explained/,
  );
});

test("serve: POST /v1/explain answers per label; bad requests get one clear 4xx each", async () => {
  const srv = await createServer(clf, { port: 0 });
  const post = async (body: unknown) => {
    const r = await fetch(`${srv.url}/v1/explain`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return {
      status: r.status,
      body: (await r.json()) as {
        explanations: { label: string; tokens: { text: string }[] }[];
        error: { code: string };
      },
    };
  };
  try {
    const ok = await post({ text: "あい犬かき", labels: ["dog"], steps: 16 });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.explanations.length, 1);
    const e = ok.body.explanations[0];
    assert.equal(e.label, "dog");
    assert.ok(e.tokens.some((t) => t.text === "犬"));
    const all = await post({ text: "鳥", method: "grad-x-input" });
    assert.deepEqual(
      all.body.explanations.map((x) => x.label),
      ["dog", "bird"],
    );
    const cases: [unknown, number, string][] = [
      [{ text: "" }, 400, "invalid_input"],
      [{ text: "犬", labels: ["cat"] }, 400, "invalid_input"],
      [{ text: "犬", steps: 100000 }, 400, "invalid_steps"],
      [{ text: "犬", method: "lime" }, 400, "invalid_method"],
      [{ texts: ["犬"] }, 400, "invalid_text"],
    ];
    for (const [body, status, code] of cases) {
      const r = await post(body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.equal(r.body.error.code, code);
    }
    // concurrent requests are queued, not failed
    const many = await Promise.all([1, 2, 3].map(() => post({ text: "犬", steps: 4 })));
    assert.ok(many.every((r) => r.status === 200));
  } finally {
    await srv.close();
  }
});

test("page: the why? toggle marks the spans of each category above its threshold (not by colour alone)", {
  timeout: 120_000,
}, async () => {
  const srv = await createServer(clf, { port: 0, title: "planted-signal run" });
  const browser = await launchChromium(join(dir, "profile"), {
    viewport: { width: 900, height: 900 },
    locale: "ja-JP",
    reducedMotion: "reduce",
  });
  try {
    const page = browser.page;
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(e.message));
    await page.goto(`${srv.url}/`);
    await page.waitForSelector('body[data-state="ready"]');
    await page.fill("#text", "あいう犬かきくけ鳥こさ");
    await page.check("#why");
    await page.click("#classify");
    await page.waitForSelector('body[data-state="done"]');
    const sections = (await page.evaluate(`[...document.querySelectorAll(".why-label")].map((s) => ({
      label: s.dataset.label,
      up: [...s.querySelectorAll("mark.up")].map((m) => ({ text: m.textContent, aria: m.getAttribute("aria-label"), deco: getComputedStyle(m).textDecorationLine })),
      list: [...s.querySelectorAll("li")].map((li) => li.textContent),
    }))`)) as { label: string; up: { text: string; aria: string; deco: string }[]; list: string[] }[];
    const dog = sections.find((s) => s.label === "dog");
    assert.ok(dog, JSON.stringify(sections));
    const key = dog.up.find((m) => m.text === "犬");
    assert.ok(key, JSON.stringify(dog));
    assert.equal(key.deco, "underline");
    assert.match(key.aria, /raised the score \+\d/);
    assert.match(dog.list[0], /^「犬」 \+\d+\.\d{2} ▲$/);
    assert.deepEqual(problems, []);
    const shot = join(dir, "explain-page.png");
    await page.screenshot({ path: shot, fullPage: true });
    if (process.env.TOXLORA_SCREENSHOT) await copyFile(shot, process.env.TOXLORA_SCREENSHOT);
    // toggle off: no explanation requested. The page is still "done" from the first request when
    // the click returns, so wait for the new answer's render (no explanation section) rather than
    // for the state, which raced with it (CI saw the old sections).
    await page.uncheck("#why");
    await page.click("#classify");
    await page.locator(".why-label").first().waitFor({ state: "detached", timeout: 60_000 });
    await page.waitForSelector('body[data-state="done"]');
    assert.equal(await page.locator(".why-label").count(), 0);
  } finally {
    await browser.context.close();
    await srv.close();
  }
});
