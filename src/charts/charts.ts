// Charts for every toxlora report: Vega-Lite spec → SVG (vega, in Node, no browser) → PNG (resvg),
// with Noto Sans JP so Japanese labels render as glyphs rather than empty boxes. Helpers build
// specs for the usual chart kinds; any other Vega-Lite spec can be rendered as well.
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import type { TopLevelSpec } from "vega-lite";
import * as vl from "vega-lite";
import { writeFileAtomic } from "../io/atomic.js";
import { CHART_FONT_FAMILY, japaneseFontFiles, measureText } from "./fonts.js";

export type VegaLiteSpec = TopLevelSpec;

export interface RenderOptions {
  /** PNG pixels per SVG pixel (default 2, for sharp text). */
  scale?: number;
  /** Font files for the PNG; default Noto Sans JP. `[]` renders without any font (tests use it). */
  fontFiles?: string[];
}

export interface RenderedChart {
  svg: string;
  png: Buffer;
}

export interface RasterImage {
  png: Buffer;
  width: number;
  height: number;
  /** RGBA, row-major. */
  pixels: Buffer;
}

// Vega measures text to lay out axes and legends. Without node-canvas it guesses 0.8 em per
// character, which is too wide for Latin and too narrow for Japanese; use the real font widths.
type TextItem = { fontSize?: number; fontWeight?: string | number };
(vega as unknown as { textMetrics: { width: (item: TextItem, text: unknown) => number } }).textMetrics.width =
  (item, text) => {
    const size = item.fontSize ?? 11;
    const bold = item.fontWeight === "bold" || Number(item.fontWeight) >= 600;
    const s = text == null ? "" : String(text).trim();
    return measureText(s, size) * (bold ? 1.05 : 1);
  };

/** Config every helper uses: the Japanese font everywhere, a white background. */
export const BASE_CONFIG = {
  font: CHART_FONT_FAMILY,
  background: "white",
  title: { fontSize: 14, anchor: "start" as const },
  axis: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
};

function withConfig(spec: VegaLiteSpec): VegaLiteSpec {
  const config = { ...BASE_CONFIG, ...(spec.config ?? {}) };
  return { ...spec, config } as VegaLiteSpec;
}

/** Vega-Lite spec → SVG text. Data must be inline (`data.values`); nothing is fetched. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  // Vega-Lite's warnings are about spec details, not the user's data: keep them off the console.
  const quiet = {
    level: () => quiet,
    error: (...m: unknown[]) => {
      throw new Error(m.join(" "));
    },
    warn: () => quiet,
    info: () => quiet,
    debug: () => quiet,
  };
  const compiled = vl.compile(withConfig(spec), { logger: quiet as never }).spec;
  const loader = vega.loader();
  // Refuse URLs and files: charts are built from data already in memory.
  loader.load = async (uri: string) => {
    throw new Error(`chart data must be inline; refusing to load ${uri}`);
  };
  // Vega reports failed data loads as warnings and renders an empty chart; make them errors.
  const problems: string[] = [];
  const record = (...m: unknown[]) => {
    problems.push(m.map(String).join(" "));
    return logger;
  };
  const logger = {
    level: () => logger,
    error: record,
    warn: (...m: unknown[]) => (String(m[0]).startsWith("Loading failed") ? record(...m) : logger),
    info: () => logger,
    debug: () => logger,
  };
  const view = new vega.View(vega.parse(compiled), { renderer: "none", loader, logger: logger as never });
  try {
    const svg = await view.toSVG();
    if (problems.length > 0) throw new Error(`chart rendering failed: ${problems[0]}`);
    return svg;
  } finally {
    view.finalize();
  }
}

/** SVG → PNG with resvg, using the Japanese font (and no system fonts, for identical output everywhere). */
export async function rasterizeSvg(svg: string, options: RenderOptions = {}): Promise<RasterImage> {
  const fontFiles = options.fontFiles ?? japaneseFontFiles();
  const resvg = new Resvg(svg, {
    font: {
      fontFiles,
      loadSystemFonts: false,
      defaultFontFamily: CHART_FONT_FAMILY,
      sansSerifFamily: CHART_FONT_FAMILY,
    },
    fitTo: { mode: "zoom", value: options.scale ?? 2 },
  });
  const image = resvg.render();
  return { png: image.asPng(), width: image.width, height: image.height, pixels: image.pixels };
}

export async function renderChart(spec: VegaLiteSpec, options: RenderOptions = {}): Promise<RenderedChart> {
  const svg = await renderSvg(spec);
  const { png } = await rasterizeSvg(svg, options);
  return { svg, png };
}

/** Renders and writes `<outBase>.svg` and `<outBase>.png` (each atomically). */
export async function writeChart(
  spec: VegaLiteSpec,
  outBase: string,
  options: RenderOptions = {},
): Promise<{ svg: string; png: string }> {
  const chart = await renderChart(spec, options);
  const paths = { svg: `${outBase}.svg`, png: `${outBase}.png` };
  await writeFileAtomic(paths.svg, chart.svg);
  await writeFileAtomic(paths.png, chart.png);
  return paths;
}

export interface ChartText {
  title?: string;
  /** Optional second title line. */
  subtitle?: string;
}

function titleOf(opts: ChartText): VegaLiteSpec["title"] {
  if (!opts.title) return undefined;
  return opts.subtitle ? { text: opts.title, subtitle: opts.subtitle } : opts.title;
}

export interface BarDatum {
  category: string;
  value: number;
  /** Bars of several series are drawn side by side, coloured by series. */
  series?: string;
}

export interface BarChartOptions extends ChartText {
  categoryTitle?: string;
  valueTitle?: string;
  /** Values are fractions 0..1, shown as percentages. */
  percent?: boolean;
  /** Bars run left to right with categories down the side (default, readable for long labels). */
  horizontal?: boolean;
  /** Width of the value axis in pixels (default 420). */
  size?: number;
  /** Print each bar's value next to it (default true for a single series). */
  showValues?: boolean;
}

/** Axis settings for whole-number values (counts, steps, epochs). */
const INTEGER_AXIS = { format: "d", tickMinStep: 1 };

/** Bar chart of values per category, e.g. label rates. Categories keep the order given. */
export function barChart(data: BarDatum[], opts: BarChartOptions = {}): VegaLiteSpec {
  const horizontal = opts.horizontal ?? true;
  const hasSeries = data.some((d) => d.series !== undefined);
  const order = [...new Set(data.map((d) => d.category))];
  const cat = horizontal ? "y" : "x";
  const val = horizontal ? "x" : "y";
  const format = opts.percent ? ".0%" : undefined;
  const encoding: Record<string, unknown> = {
    [cat]: {
      field: "category",
      type: "nominal",
      sort: order,
      title: opts.categoryTitle ?? null,
      ...(horizontal ? {} : { axis: { labelAngle: 0 } }),
    },
    [val]: {
      field: "value",
      type: "quantitative",
      title: opts.valueTitle ?? null,
      axis: format ? { format } : data.every((d) => Number.isInteger(d.value)) ? INTEGER_AXIS : {},
    },
    tooltip: [
      { field: "category", type: "nominal" },
      { field: "value", type: "quantitative", format: opts.percent ? ".2%" : "," },
    ],
  };
  const offset = horizontal ? "yOffset" : "xOffset";
  if (hasSeries) {
    // Series keep the order given too (e.g. train, valid, test), not alphabetical order.
    const seriesOrder = [...new Set(data.map((d) => d.series ?? ""))];
    encoding.color = {
      field: "series",
      type: "nominal",
      title: null,
      sort: seriesOrder,
      legend: { orient: "bottom" },
    };
    encoding[offset] = { field: "series", type: "nominal", sort: seriesOrder };
  }
  const size = opts.size ?? 420;
  const bars = { mark: { type: "bar" as const }, encoding };
  const showValues = opts.showValues ?? !hasSeries;
  const layer: unknown[] = [bars];
  if (showValues) {
    layer.push({
      mark: {
        type: "text",
        align: horizontal ? "left" : "center",
        baseline: horizontal ? "middle" : "bottom",
        dx: horizontal ? 3 : 0,
        dy: horizontal ? 0 : -2,
        fontSize: 10,
      },
      encoding: {
        [cat]: encoding[cat],
        [val]: encoding[val],
        ...(hasSeries ? { [offset]: encoding[offset] } : {}),
        text: { field: "value", type: "quantitative", format: opts.percent ? ".1%" : "," },
      },
    });
  }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: titleOf(opts),
    data: { values: data },
    // One band per category, holding one thin bar per series.
    ...(horizontal
      ? { width: size, height: hasSeries ? { step: 14, for: "offset" } : { step: 20 } }
      : { height: size * 0.6, width: hasSeries ? { step: 16, for: "offset" } : { step: 28 } }),
    layer,
  } as VegaLiteSpec;
}

export interface HistogramOptions extends ChartText {
  xTitle?: string;
  yTitle?: string;
  /** Upper bound on the number of bins (default 30). */
  maxBins?: number;
}

/** Histogram of raw numeric values (Vega-Lite bins them). */
export function histogramChart(values: number[], opts: HistogramOptions = {}): VegaLiteSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: titleOf(opts),
    data: { values: values.map((v) => ({ v })) },
    width: 420,
    height: 240,
    mark: { type: "bar", tooltip: true },
    encoding: {
      x: {
        field: "v",
        type: "quantitative",
        bin: { maxbins: opts.maxBins ?? 30 },
        title: opts.xTitle ?? null,
      },
      y: { aggregate: "count", type: "quantitative", title: opts.yTitle ?? "rows" },
    },
  } as VegaLiteSpec;
}

export interface HeatCell {
  x: string;
  y: string;
  value: number;
}

export interface HeatmapOptions extends ChartText {
  xTitle?: string;
  yTitle?: string;
  /** Category order for both axes (default: order of first appearance). */
  order?: string[];
  /** Print each cell's value (default true). */
  showValues?: boolean;
}

/** Heatmap of values on a category × category grid, e.g. a co-occurrence or confusion matrix. */
export function heatmapChart(cells: HeatCell[], opts: HeatmapOptions = {}): VegaLiteSpec {
  const xOrder = opts.order ?? [...new Set(cells.map((c) => c.x))];
  const yOrder = opts.order ?? [...new Set(cells.map((c) => c.y))];
  const max = Math.max(0, ...cells.map((c) => c.value));
  const layer: unknown[] = [
    {
      mark: { type: "rect", tooltip: true },
      encoding: { color: { field: "value", type: "quantitative", title: null, scale: { scheme: "blues" } } },
    },
  ];
  if (opts.showValues ?? true) {
    layer.push({
      mark: { type: "text", fontSize: 10 },
      encoding: {
        text: { field: "value", type: "quantitative", format: "," },
        // Dark cells get white text.
        color: { condition: { test: `datum.value > ${max * 0.6}`, value: "white" }, value: "black" },
      },
    });
  }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: titleOf(opts),
    data: { values: cells },
    width: { step: 44 },
    height: { step: 26 },
    encoding: {
      x: { field: "x", type: "nominal", sort: xOrder, title: opts.xTitle ?? null, axis: { labelAngle: -40 } },
      y: { field: "y", type: "nominal", sort: yOrder, title: opts.yTitle ?? null },
    },
    layer,
  } as VegaLiteSpec;
}

export interface LinePoint {
  x: number;
  y: number;
  series?: string;
}

export interface LineChartOptions extends ChartText {
  xTitle?: string;
  yTitle?: string;
  /** Log scale on y (e.g. loss curves). */
  logY?: boolean;
  /** Mark each point (default: only when there are few). */
  points?: boolean;
}

/** Line chart, one line per series, e.g. loss or F1 per step. */
export function lineChart(points: LinePoint[], opts: LineChartOptions = {}): VegaLiteSpec {
  const hasSeries = points.some((p) => p.series !== undefined);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: titleOf(opts),
    data: { values: points },
    width: 480,
    height: 260,
    mark: { type: "line", point: opts.points ?? points.length <= 60, tooltip: true },
    encoding: {
      x: {
        field: "x",
        type: "quantitative",
        title: opts.xTitle ?? null,
        // Steps, epochs and counts are whole numbers: no "1.5" ticks between them.
        ...(points.every((p) => Number.isInteger(p.x)) ? { axis: INTEGER_AXIS } : {}),
      },
      y: {
        field: "y",
        type: "quantitative",
        title: opts.yTitle ?? null,
        ...(opts.logY ? { scale: { type: "log" } } : { scale: { zero: false } }),
      },
      ...(hasSeries
        ? { color: { field: "series", type: "nominal", title: null, legend: { orient: "bottom" } } }
        : {}),
    },
  } as VegaLiteSpec;
}

export interface QuantileRow {
  category: string;
  min: number;
  p25: number;
  median: number;
  p75: number;
  max: number;
  count?: number;
}

export interface QuantileChartOptions extends ChartText {
  valueTitle?: string;
  /** Log scale on the value axis (useful for text lengths). */
  log?: boolean;
}

/** Box-style chart from precomputed quantiles: a line min–max, a box p25–p75, a tick at the median. */
export function quantileChart(rows: QuantileRow[], opts: QuantileChartOptions = {}): VegaLiteSpec {
  const order = rows.map((r) => r.category);
  const scale = opts.log ? { type: "log" } : { zero: true };
  const y = { field: "category", type: "nominal", sort: order, title: null };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: titleOf(opts),
    data: { values: rows },
    width: 420,
    height: { step: 24 },
    encoding: { y },
    layer: [
      {
        mark: { type: "rule", color: "#555" },
        encoding: {
          x: { field: "min", type: "quantitative", scale, title: opts.valueTitle ?? null },
          x2: { field: "max" },
        },
      },
      {
        mark: { type: "bar", size: 14, color: "#7aa6d6", tooltip: true },
        encoding: { x: { field: "p25", type: "quantitative" }, x2: { field: "p75" } },
      },
      {
        mark: { type: "tick", color: "black", size: 14, thickness: 2 },
        encoding: { x: { field: "median", type: "quantitative" } },
      },
    ],
  } as VegaLiteSpec;
}
