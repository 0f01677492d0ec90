// The run report and the comparison page, on synthetic run directories (see synthetic-run.ts).
// That Japanese chart text is drawn as glyphs (not tofu) is checked once for the shared chart module
// in charts.test.ts ("Japanese text"); every chart here goes through that same module.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { inlineSvg } from "../../src/html/html.js";
import {
  buildComparison,
  buildReport,
  degenerateWarnings,
  labelSlug,
  runNames,
  worstErrors,
} from "../../src/report/report.js";
import { readRun } from "../../src/report/run.js";
import { RUN_FILES } from "../../src/run/types.js";
import { writeSyntheticRun } from "./synthetic-run.js";
import { TRAINED_LABELS, trainTinyRun } from "./trained-run.js";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Chart names a full report must contain for these labels (slugs as the report makes them). */
function expectedCharts(slugs: string[]): string[] {
  return [
    "loss",
    "learning-rate",
    "f1-by-epoch",
    ...slugs.flatMap((s) => [`confusion-${s}`, `pr-${s}`, `roc-${s}`, `scores-${s}`, `reliability-${s}`]),
    "label-rates",
  ];
}

/** Checks the page needs nothing from outside: no scripts, stylesheets, fonts or remote images. */
function assertSelfContained(html: string): void {
  assert.doesNotMatch(html, /<script/i, "no script elements");
  assert.doesNotMatch(html, /<link\b/i, "no linked resources");
  assert.doesNotMatch(html, /@import/i, "no imported style sheets");
  // CSS and SVG may point only into the page itself: data: URLs (the embedded font) and #fragments.
  for (const m of html.matchAll(/url\(\s*["']?([^"')]*)/gi)) {
    assert.match(m[1] as string, /^(data:|#)/, `url(${(m[1] as string).slice(0, 40)}) is inside the page`);
  }
  assert.match(
    html,
    /@font-face \{[^}]*src: url\("data:font\/woff2;base64,/,
    "the Japanese font is embedded",
  );
  assert.doesNotMatch(html, /\ssrc=/i, "no src attributes");
  // The only http(s) strings allowed are XML namespace names, which browsers never fetch.
  const urls = html.match(/https?:\/\/[^\s"'<)]+/g) ?? [];
  for (const u of urls) assert.match(u, /^http:\/\/www\.w3\.org\//, `unexpected URL ${u}`);
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-report-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("buildReport on a run made by the trainer", () => {
  it("writes a self-contained HTML page with every chart, and each chart as SVG and PNG in imgs/", async () => {
    const run = await trainTinyRun(join(dir, "trained"));
    const out = await buildReport(run);
    assert.equal(out, join(run, "report.html"));
    const html = await readFile(out, "utf8");
    assert.ok(html.startsWith("<!doctype html>"));
    assertSelfContained(html);

    const names = expectedCharts(TRAINED_LABELS);
    for (const name of names) {
      const m = new RegExp(`<figure id="chart-${name}" data-chart="${name}"><svg `).exec(html);
      assert.ok(m, `chart ${name} is inlined in the page`);
      const png = await readFile(join(run, "imgs", `${name}.png`));
      assert.ok(png.length > 1000, `${name}.png is not empty (${png.length} bytes)`);
      assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
      const svg = await readFile(join(run, "imgs", `${name}.svg`), "utf8");
      assert.match(svg, /^<svg /);
    }
    const files = await readdir(join(run, "imgs"));
    assert.equal(files.length, names.length * 2, "no other (temporary) files in imgs/");

    // The summary shows the trainer's own numbers (eval.json at the tuned thresholds).
    const ev = JSON.parse(await readFile(join(run, RUN_FILES.eval), "utf8"));
    assert.ok(html.includes(`macro F1 ${ev.tuned.macroF1.toFixed(3)}`));
    for (const label of TRAINED_LABELS) {
      const m = ev.tuned.perLabel[label];
      assert.ok(html.includes(`<td>${label}</td><td class="n">${m.support}</td>`), `${label} support`);
      assert.ok(html.includes(`<td class="n">${m.prAuc.toFixed(3)}</td>`), `${label} PR-AUC`);
    }
    assert.ok(html.includes(`trained in ${ev.trainSeconds.toFixed(1)} s`));
    // Split label rates, recomputed from the data file the manifest names, and both epochs' sets.
    for (const set of ["train", "valid", "test", "epoch 1 (re-sampled)", "epoch 2 (re-sampled)"]) {
      assert.ok(html.includes(`<td>${set}</td>`), `label rates of ${set}`);
    }
    assert.ok(!html.includes("split label rates unavailable"));
    // Worst errors list real evaluation texts (escaped).
    assert.match(html, /false (positive|negative) \/ (誤検出|見逃し)/);
    assert.match(html, /\[\d+ items\]/, "long split id lists are summarised");
  });
});

describe("buildReport on synthetic runs", () => {
  it("escapes user text and shows versions and training time", async () => {
    const run = join(dir, "run-a");
    const evil = '<script>alert("x")</script>「差別」& more';
    await writeSyntheticRun(run, { texts: Array.from({ length: 90 }, () => evil), secondsPerStep: 2 });
    const html = await readFile(await buildReport(run), "utf8");
    assertSelfContained(html);
    for (const name of expectedCharts(["obscene", "discriminatory", "corporate"])) {
      assert.ok(html.includes(`data-chart="${name}"><svg `), name);
    }
    // User text is escaped, in tables and in the worst-error lists.
    assert.ok(html.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;「差別」&amp; more"));
    // The summary shows eval.json's bootstrap intervals.
    const ev = JSON.parse(await readFile(join(run, RUN_FILES.eval), "utf8"));
    assert.ok(html.includes("<th>F1 95% CI</th>"));
    const ci = ev.tuned.perLabel.obscene.ci95.f1;
    assert.ok(html.includes(`${ci[0].toFixed(3)}–${ci[1].toFixed(3)}`), "obscene F1 interval");
    assert.ok(html.includes("200 resamples of the evaluation rows"));
    // Calibration: ECE per label with the bin count stated; this run is not calibrated.
    assert.ok(html.includes("<th>ECE (10 bins)</th>"));
    assert.ok(html.includes("The run is not calibrated"));
    // eval.json's trainSeconds: 36 steps × 2 s.
    assert.ok(html.includes("1 min 12 s"));
    assert.match(html, /trained with toxlora<\/td><td>0\.1\.0</);
    assert.ok(html.includes("<td>epoch 3 (re-sampled)</td>"));
  });

  it("warns about a label whose scores are constant and that flags every row", async () => {
    const run = join(dir, "run-flat");
    await writeSyntheticRun(run, { flatLabel: "corporate" });
    // eval.json written before the check existed: the report checks the predictions itself.
    const [w, ...more] = degenerateWarnings(await readRun(run));
    assert.deepEqual(more, []);
    assert.match(
      w ?? "",
      /^label "corporate": its scores hardly vary \(test 0\.5002\).*flags every row: test 90 of 90/,
    );
    const html = await readFile(await buildReport(run), "utf8");
    assert.ok(
      html.includes('<p class="note warn">Warning: label &quot;corporate&quot;: its scores hardly vary'),
    );
    // eval.json's `degenerate` (as the trainer writes it) is what the report shows when present.
    const file = join(run, RUN_FILES.eval);
    const ev = JSON.parse(await readFile(file, "utf8"));
    await writeFile(
      file,
      JSON.stringify({ ...ev, degenerate: { obscene: { warning: 'label "obscene": saved' } } }),
    );
    assert.deepEqual(degenerateWarnings(await readRun(run)), ['label "obscene": saved']);
  });

  it("escapes label names everywhere and gives them safe, unique file names", async () => {
    const run = join(dir, "run-labels");
    const labels = ["a<b>&c", "差別的", "a/b&c"];
    await writeSyntheticRun(run, { labels, rows: 40, epochs: 1, stepsPerEpoch: 4 });
    const out = await buildReport(run, { out: join(dir, "labels.html") });
    const html = await readFile(out, "utf8");
    assertSelfContained(html);
    assert.ok(!html.includes("a<b>"), "raw label markup never reaches the page");
    assert.ok(html.includes("a&lt;b&gt;&amp;c"));
    const slugs = labels.map((l, j) => labelSlug(l, j));
    assert.deepEqual(slugs, ["a_b_c", "差別的", "a_b_c"]);
    // The second "a_b_c" gets its index appended.
    for (const name of expectedCharts(["a_b_c", "差別的", "a_b_c-3"])) {
      assert.ok((await stat(join(run, "imgs", `${name}.png`))).size > 1000, name);
    }
    // The report lives outside the run: image links point into the run's imgs/ folder.
    assert.ok(html.includes(`href="run-labels/imgs/pr-${encodeURIComponent("差別的")}.png"`));
  });

  it("reports a run that is still training (only config and metrics) and lists the missing files", async () => {
    const run = join(dir, "run-partial");
    await writeSyntheticRun(run, { rows: 30, epochs: 1, stepsPerEpoch: 3 });
    for (const f of [RUN_FILES.eval, RUN_FILES.thresholds, RUN_FILES.evalPredictions, RUN_FILES.manifest]) {
      await rm(join(run, f));
    }
    const html = await readFile(await buildReport(run), "utf8");
    assert.match(html, /Missing run files[^<]*eval\.json/);
    assert.ok(html.includes('data-chart="loss"'));
    assert.ok(!html.includes('data-chart="pr-obscene"'));
    assert.ok(html.includes("No evaluation yet"));
  });

  it("names the file, line and field of a bad metrics line", async () => {
    const run = join(dir, "run-bad");
    await writeSyntheticRun(run, { rows: 30, epochs: 1, stepsPerEpoch: 3 });
    const metrics = join(run, RUN_FILES.metrics);
    const lines = (await readFile(metrics, "utf8")).split("\n");
    lines[2] = JSON.stringify({ type: "step", step: 2, epoch: 0.5, loss: "NaN", lr: 1e-4 });
    await writeFile(metrics, lines.join("\n"));
    await assert.rejects(buildReport(run), (err: Error) => {
      assert.match(err.message, /metrics\.jsonl:3: field "loss": expected a finite number/);
      return true;
    });
    await writeFile(join(run, RUN_FILES.config), "{ not json");
    await assert.rejects(readRun(run), /config\.json: invalid JSON/);
    await assert.rejects(readRun(join(dir, "nowhere")), /not a run directory/);
  });

  it("rejects predictions that do not match the run's labels", async () => {
    const run = join(dir, "run-badpred");
    await writeSyntheticRun(run, { rows: 30, epochs: 1, stepsPerEpoch: 3 });
    const file = join(run, RUN_FILES.evalPredictions);
    const lines = (await readFile(file, "utf8")).split("\n");
    const row = JSON.parse(lines[4] as string);
    row.probs.corporate = 1.5;
    lines[4] = JSON.stringify(row);
    await writeFile(file, lines.join("\n"));
    await assert.rejects(
      readRun(run),
      /predictions\/eval\.jsonl:5: field "probs\.corporate": expected a probability/,
    );
  });
});

describe("report helpers", () => {
  it("worstErrors lists misclassified rows, the most confidently wrong first", () => {
    const row = (id: string, p: number, t: number) => ({ id, text: id, truth: { x: t }, probs: { x: p } });
    const preds = [
      row("a", 0.9, 0),
      row("b", 0.2, 1),
      row("c", 0.55, 0),
      row("d", 0.8, 1),
      row("e", 0.05, 1),
    ];
    const worst = worstErrors(preds, "x", 0.5, 3);
    assert.deepEqual(
      worst.map((w) => [w.id, w.kind]),
      [
        ["e", "FN"],
        ["a", "FP"],
        ["b", "FN"],
      ],
    );
    assert.equal(worstErrors(preds, "x", 0.5, 10).length, 4);
  });

  it("inlineSvg gives every id a per-chart prefix, references included", () => {
    const svg =
      '<svg><defs><clipPath id="clip1"><rect/></clipPath></defs><g clip-path="url(#clip1)"><use href="#clip1"/></g></svg>';
    const out = inlineSvg(svg, "pr-差別").html;
    assert.equal(
      out,
      '<svg><defs><clipPath id="pr-__-clip1"><rect/></clipPath></defs><g clip-path="url(#pr-__-clip1)"><use href="#pr-__-clip1"/></g></svg>',
    );
  });

  it("runNames keeps the distinguishing part of each path", () => {
    assert.deepEqual(runNames(["/x/out/bert/a", "/x/out/bert/b"]), ["a", "b"]);
    assert.deepEqual(runNames(["/x/p/run", "/x/q/run"]), ["p/run", "q/run"]);
  });
});

describe("buildComparison", () => {
  it("puts runs side by side: per-label F1, PR-AUC and training time", async () => {
    const a = join(dir, "cmp", "prototype");
    const b = join(dir, "cmp", "resample");
    await mkdir(join(dir, "cmp"), { recursive: true });
    await writeSyntheticRun(a, { rows: 40, epochs: 1, stepsPerEpoch: 5, seed: 1, secondsPerStep: 3 });
    await writeSyntheticRun(b, {
      rows: 40,
      epochs: 2,
      stepsPerEpoch: 5,
      seed: 2,
      labels: ["obscene", "discriminatory"],
    });
    const out = await buildComparison([a, b], join(dir, "cmp", "compare.html"));
    const html = await readFile(out, "utf8");
    assertSelfContained(html);
    for (const chart of ["compare-f1", "compare-pr-auc", "compare-time"]) {
      assert.ok(html.includes(`data-chart="${chart}"><svg `), chart);
    }
    const evA = JSON.parse(await readFile(join(a, RUN_FILES.eval), "utf8")).tuned;
    const evB = JSON.parse(await readFile(join(b, RUN_FILES.eval), "utf8")).tuned;
    // The F1 table: one row per label, one column per run; a label run b lacks shows "–".
    const f1Table = html.slice(html.indexOf('id="f1"'), html.indexOf('id="pr-auc"'));
    assert.ok(f1Table.includes("<th>prototype</th><th>resample</th>"));
    for (const label of ["obscene", "discriminatory"]) {
      assert.ok(f1Table.includes(evA.perLabel[label].f1.toFixed(3)), `${label} F1 of run a`);
      assert.ok(f1Table.includes(evB.perLabel[label].f1.toFixed(3)), `${label} F1 of run b`);
    }
    assert.match(
      f1Table,
      /<td>corporate<\/td><td class="n">(<span class="best">)?[\d.]+(<\/span>)?<\/td><td class="n">–<\/td>/,
    );
    // The paired section: run b against run a, with the warnings a reader needs.
    const paired = html.slice(html.indexOf('id="paired"'), html.indexOf('id="charts"'));
    assert.ok(paired.includes("<th>95% CI of B−A</th>"));
    assert.match(
      paired,
      /Warning: the runs have different labels; only obscene, discriminatory are compared/,
    );
    assert.match(paired, /Warning: \d+ shared rows have a different truth/);
    // Training time of run a: 5 steps × 3 s; run b records none.
    assert.ok(html.includes("15.0 s"));
    await assert.rejects(buildComparison([a], join(dir, "x.html")), /at least two/);
  });
});
