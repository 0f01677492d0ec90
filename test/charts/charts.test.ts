// Charts: Vega-Lite → SVG → PNG in Node, with Japanese text drawn as real glyphs.
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  barChart,
  heatmapChart,
  histogramChart,
  lineChart,
  quantileChart,
  rasterizeSvg,
  renderChart,
  renderSvg,
  type VegaLiteSpec,
  writeChart,
} from "../../src/charts/charts.js";
import { japaneseFontFiles, measureText } from "../../src/charts/fonts.js";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Number of pixels whose RGBA differs between two same-sized images. */
function differingPixels(a: Buffer, b: Buffer): number {
  assert.equal(a.length, b.length, "images of the same size");
  let n = 0;
  for (let i = 0; i < a.length; i += 4) {
    if (a[i] !== b[i] || a[i + 1] !== b[i + 1] || a[i + 2] !== b[i + 2] || a[i + 3] !== b[i + 3]) n++;
  }
  return n;
}

/** A chart whose only varying content is one Japanese category label. */
function labelChart(label: string): VegaLiteSpec {
  return barChart([{ category: label, value: 0.5 }], { percent: true, showValues: false });
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "toxlora-charts-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("Japanese text", () => {
  it("is drawn with the bundled font: different words give different glyphs, no font gives no glyphs", async () => {
    // Two labels of the same width (two full-width characters each), so only the glyphs differ.
    const svgA = await renderSvg(labelChart("卑語"));
    const svgB = await renderSvg(labelChart("差別"));
    assert.ok(svgA.includes("卑語"));
    const withFontA = await rasterizeSvg(svgA);
    const withFontB = await rasterizeSvg(svgB);
    const noFontA = await rasterizeSvg(svgA, { fontFiles: [] });
    const noFontB = await rasterizeSvg(svgB, { fontFiles: [] });

    // Without a font the two labels are indistinguishable (nothing, or identical boxes, is drawn).
    assert.equal(differingPixels(noFontA.pixels, noFontB.pixels), 0);
    // With the font each word has its own glyphs.
    const glyphDiff = differingPixels(withFontA.pixels, withFontB.pixels);
    assert.ok(glyphDiff > 150, `glyphs of 卑語 and 差別 differ in only ${glyphDiff} pixels`);
    // And the font changes the picture substantially (all text: labels, axis numbers).
    const fontDiff = differingPixels(withFontA.pixels, noFontA.pixels);
    assert.ok(fontDiff > 1000, `font vs no font differ in only ${fontDiff} pixels`);
  });

  it("text widths come from the font: kanji are 1 em, Latin narrower", () => {
    assert.equal(measureText("卑語", 10), 20);
    const latin = measureText("ab", 10);
    assert.ok(latin > 8 && latin < 14, `${latin}`);
    assert.equal(japaneseFontFiles().length, 2);
  });
});

describe("chart helpers", () => {
  it("render every chart kind to SVG and PNG", async () => {
    const specs: Record<string, VegaLiteSpec> = {
      bar: barChart(
        [
          { category: "猥褻", value: 0.6, series: "all" },
          { category: "猥褻", value: 0.3, series: "any" },
          { category: "corporate", value: 0.2, series: "all" },
          { category: "corporate", value: 0.1, series: "any" },
        ],
        { title: "ラベル率", percent: true },
      ),
      histogram: histogramChart([1, 2, 2, 3, 3, 3, 10], { title: "長さ", xTitle: "characters" }),
      heatmap: heatmapChart(
        [
          { x: "a", y: "a", value: 3 },
          { x: "a", y: "b", value: 1 },
          { x: "b", y: "a", value: 1 },
          { x: "b", y: "b", value: 5 },
        ],
        { title: "共起" },
      ),
      line: lineChart(
        [
          { x: 1, y: 0.9, series: "train" },
          { x: 2, y: 0.5, series: "train" },
          { x: 1, y: 1.0, series: "eval" },
          { x: 2, y: 0.7, series: "eval" },
        ],
        { title: "loss", logY: true },
      ),
      quantiles: quantileChart([{ category: "全体", min: 1, p25: 5, median: 8, p75: 12, max: 40 }], {
        log: true,
      }),
    };
    for (const [name, spec] of Object.entries(specs)) {
      const { svg, png } = await renderChart(spec);
      assert.match(svg, /^<svg /, name);
      assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE, name);
    }
    const line = await renderSvg(specs.line as VegaLiteSpec);
    assert.equal((line.match(/role-mark.*?mark-line|mark-line/g) ?? []).length > 0, true);
    const bar = await renderSvg(specs.bar as VegaLiteSpec);
    assert.ok(bar.includes("ラベル率") && bar.includes("猥褻"));
  });

  it("writeChart writes <base>.svg and <base>.png, with no temporary files left", async () => {
    const paths = await writeChart(labelChart("迷惑行為"), join(dir, "sub", "rates"));
    assert.deepEqual(paths, { svg: join(dir, "sub", "rates.svg"), png: join(dir, "sub", "rates.png") });
    assert.deepEqual((await readdir(join(dir, "sub"))).sort(), ["rates.png", "rates.svg"]);
    assert.deepEqual((await readFile(paths.png)).subarray(0, 8), PNG_SIGNATURE);
  });

  it("refuses to load data from URLs", async () => {
    const spec = { data: { url: "http://127.0.0.1:9/data.json" }, mark: "point" } as VegaLiteSpec;
    await assert.rejects(renderSvg(spec), /chart data must be inline/);
  });
});
