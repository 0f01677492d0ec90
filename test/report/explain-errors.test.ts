// The report's worst errors with their highlights: on a run made by the trainer (tiny model), the
// highest-scored false positives and lowest-scored false negatives of each label are drawn with
// spans that lie on their texts and add up to logit − baselineLogit; --explain-errors 0 turns the
// section off without loading the model; a tfidf-lr baseline run gets a note instead.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { textContent } from "../../src/html/html.js";
import { buildReport } from "../../src/report/report.js";
import { readRun } from "../../src/report/run.js";
import { train } from "../../src/train/trainer.js";
import { fixture } from "../fixture.js";
import { writeSyntheticRun } from "./synthetic-run.js";
import { trainTinyRun } from "./trained-run.js";

let dir: string;
let run: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-report-why-"));
  run = await trainTinyRun(join(dir, "trained"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Section {
  attrs: Record<string, string>;
  spans: { tag: string; start: number; end: number; attribution: number; text: string; attrs: string }[];
  post: string;
}

/** The highlighted sections of a report, read back from its HTML. */
function sections(html: string): Section[] {
  const out: Section[] = [];
  for (const m of html.matchAll(/<section class="why-label"([^>]*)>([\s\S]*?)<\/section>/g)) {
    const attrs = Object.fromEntries(
      [...(m[1] as string).matchAll(/ ([\w-]+)="([^"]*)"/g)].map((a) => [a[1], textContent(a[2] as string)]),
    );
    const post = /<p class="post">([\s\S]*?)<\/p>/.exec(m[2] as string)?.[1] ?? "";
    const spans = [...post.matchAll(/<(span|mark)([^>]*)>([^<]*)<\/\1>/g)].map((s) => {
      const a = s[2] as string;
      const get = (k: string) => Number(new RegExp(` data-${k}="([^"]*)"`).exec(a)?.[1]);
      return {
        tag: s[1] as string,
        start: get("start"),
        end: get("end"),
        attribution: get("attribution"),
        text: textContent(s[3] as string),
        attrs: a,
      };
    });
    out.push({ attrs, spans, post: textContent(post) });
  }
  return out;
}

describe("report: worst errors with their highlights", () => {
  it("explains the highest-scored false positives and lowest-scored false negatives per label", async () => {
    const progress: string[] = [];
    const out = await buildReport(run, {
      out: join(dir, "why.html"),
      explainErrors: 2,
      explainSteps: 32,
      onProgress: (m) => progress.push(m),
    });
    const html = await readFile(out, "utf8");
    const data = await readRun(run);
    const found = sections(html);
    assert.ok(found.length > 0, "some errors are explained");
    assert.ok(html.includes("Why / なぜ"));
    // The chosen rows: per label the 2 highest-scored FPs then the 2 lowest-scored FNs.
    data.labels.forEach((label, j) => {
      const t = data.thresholds[j] as number;
      const p = data.predictions;
      const fp = p
        .filter((r) => (r.probs[label] as number) >= t && r.truth[label] === 0)
        .sort((a, b) => (b.probs[label] as number) - (a.probs[label] as number) || a.id.localeCompare(b.id))
        .slice(0, 2);
      const fn = p
        .filter((r) => (r.probs[label] as number) < t && r.truth[label] === 1)
        .sort((a, b) => (a.probs[label] as number) - (b.probs[label] as number) || a.id.localeCompare(b.id))
        .slice(0, 2);
      const mine = found.filter((s) => s.attrs["data-label"] === label);
      assert.deepEqual(
        mine.map((s) => [s.attrs["data-kind"], s.attrs["data-id"]]),
        [...fp.map((r) => ["FP", r.id]), ...fn.map((r) => ["FN", r.id])],
        label,
      );
    });
    let marks = 0;
    for (const s of found) {
      const row = data.predictions.find((r) => r.id === s.attrs["data-id"]);
      assert.ok(row);
      // The post is drawn whole, and each span is the text's own characters at its offsets.
      assert.equal(s.post, row.text);
      let end = 0;
      for (const sp of s.spans) {
        assert.ok(sp.start >= end && sp.end > sp.start && sp.end <= row.text.length, JSON.stringify(sp));
        assert.equal(row.text.slice(sp.start, sp.end), sp.text);
        end = sp.end;
        if (sp.tag === "mark") {
          marks++;
          assert.match(sp.attrs, /class="(up|down) l[1-4]"/);
          assert.match(sp.attrs, /aria-label="[^"]* (raised|lowered) the score [+−]\d+\.\d{2}"/);
        }
      }
      // Completeness: the spans add up to logit − baselineLogit.
      const sum = s.spans.reduce((a, sp) => a + sp.attribution, 0);
      const diff = Number(s.attrs["data-logit"]) - Number(s.attrs["data-baseline-logit"]);
      assert.ok(
        Math.abs(sum - diff) <= 0.02 * Math.max(1e-6, Math.abs(diff)) + 1e-4,
        `Σ ${sum} vs logit − baseline ${diff}`,
      );
    }
    assert.ok(marks > 0, "some spans are marked");
    assert.match(html, /<ol><li>「[^」]+」 [+−]\d+\.\d{2} [▲▼]<\/li>/);
    assert.ok(html.includes("mark.up"), "the highlight styles are in the page");
    assert.doesNotMatch(html, /\sstyle=/, "no inline style attributes (strict CSP)");
    assert.ok(progress.some((m) => /loading the run's model/.test(m)));
  });

  it("by default only a small model is explained: a larger one gets a note and is not loaded", async () => {
    // The tiny model has some thousands of parameters: under a limit of 1,000 it counts as large.
    const progress: string[] = [];
    const out = await buildReport(run, {
      out: join(dir, "large.html"),
      explainMaxParams: 1_000,
      onProgress: (m) => progress.push(m),
    });
    const html = await readFile(out, "utf8");
    assert.doesNotMatch(html, /<mark /);
    assert.match(
      html,
      /Not explained by default: the run&#39;s model has \d+ k parameters \(more than 1 k\)/,
    );
    assert.ok(html.includes("--explain-errors 3"));
    assert.ok(!progress.some((m) => /loading the run's model|^explaining/.test(m)), progress.join("; "));
    assert.ok(progress.some((m) => /not explaining the worst errors by default/.test(m)));
    // Within the limit (the default is 30 M), or asked for, they are explained, post by post.
    for (const opts of [{}, { explainErrors: 1, explainMaxParams: 1_000 }]) {
      const seen: string[] = [];
      const html2 = await readFile(
        await buildReport(run, { out: join(dir, "small.html"), ...opts, onProgress: (m) => seen.push(m) }),
        "utf8",
      );
      assert.match(html2, /class="why-label"[^>]*data-logit/);
      const total = Number(
        /explaining (\d+) misclassified posts \(32 IG steps × \d labels each\)/.exec(seen.join("\n"))?.[1],
      );
      assert.ok(total > 0, seen.join("; "));
      assert.ok(seen.some((m) => m.startsWith(`explained ${total}/${total} posts (`)));
    }
  });

  it("--explain-errors 0: no highlights, and the model is not loaded", async () => {
    const progress: string[] = [];
    const out = await buildReport(run, {
      out: join(dir, "off.html"),
      explainErrors: 0,
      onProgress: (m) => progress.push(m),
    });
    const html = await readFile(out, "utf8");
    assert.doesNotMatch(html, /class="why-label"/);
    assert.ok(!html.includes("Why / なぜ"));
    assert.ok(!progress.some((m) => /model|explaining/.test(m)), progress.join("; "));
  });

  it("a tfidf-lr baseline run: its errors without highlights, and a note saying why", async () => {
    const base = join(dir, "tfidf");
    await train(
      {
        model: "tfidf-lr",
        data: fixture("data/inspection-ai/subset.csv"),
        preset: "inspection-ai",
        labels: ["卑語", "差別", "迷惑行為"],
        out: base,
        seed: 3,
      },
      { progress: "quiet" },
    );
    const out = await buildReport(base, { out: join(dir, "tfidf.html"), explainErrors: 1 });
    const html = await readFile(out, "utf8");
    assert.match(html, /TF-IDF \+ logistic regression baseline run: it has no gradients/);
    assert.doesNotMatch(html, /<mark /);
  });

  it("a run whose model is gone: the report is still written, with the reason", async () => {
    // The synthetic-run helper points at a model folder that does not exist.
    const synthetic = join(dir, "synthetic");
    await writeSyntheticRun(synthetic);
    const out = await buildReport(synthetic, { out: join(dir, "synthetic.html") });
    const html = await readFile(out, "utf8");
    assert.match(
      html,
      // The model folder is shown relative to the run, as every path of an on-disk report.
      /No highlights: the run&#39;s model tiny-synthetic is neither in (\.\.\/)+nonexistent\/tiny-synthetic nor in the Hugging Face cache/,
    );
  });
});
