// The charts of `toxlora analyze --out`: label rates, positives per row, label co-occurrence and
// text lengths, built with the shared chart helpers.
import { join } from "node:path";
import {
  barChart,
  heatmapChart,
  quantileChart,
  type RenderOptions,
  type VegaLiteSpec,
  writeChart,
} from "../charts/charts.js";
import type { AnalysisResult } from "./analyze.js";

/** Chart specs keyed by file base name. */
export function analysisChartSpecs(result: AnalysisResult, datasetName = ""): Record<string, VegaLiteSpec> {
  const suffix = datasetName ? ` — ${datasetName}` : "";
  const rates = result.perLabel.flatMap((s) => [
    { category: s.name, value: s.rate, series: `all rows (${result.rows})` },
    { category: s.name, value: s.rateAmongAny, series: `rows with any positive (${result.anyPositive})` },
  ]);
  const cells = result.labels.flatMap((y, i) =>
    result.labels.map((x, j) => ({ x, y, value: result.cooccurrence[i]?.[j] ?? 0 })),
  );
  const lengthRows = [
    { category: "all", ...result.textLength.all },
    ...result.labels.flatMap((name, i) => {
      const s = result.textLength.perLabel[i];
      return s ? [{ category: name, ...s }] : [];
    }),
  ];
  return {
    "label-rates": barChart(rates, {
      title: `Positive rate per label${suffix}`,
      valueTitle: "rows where the label is positive",
      percent: true,
      showValues: true,
    }),
    "positives-per-row": barChart(
      result.positivesPerRow.map((n, k) => ({ category: String(k), value: n })),
      {
        title: `Positive labels per row${suffix}`,
        categoryTitle: "number of positive labels",
        valueTitle: "rows",
        horizontal: false,
      },
    ),
    cooccurrence: heatmapChart(cells, {
      title: `Label co-occurrence${suffix}`,
      subtitle: "rows positive for both labels (diagonal: the label's positives)",
      order: result.labels,
    }),
    "text-length": quantileChart(lengthRows, {
      title: `Text length by label${suffix}`,
      subtitle: "characters; line min–max, box 25–75%, tick median; rows where the label is positive",
      valueTitle: "characters",
    }),
  };
}

/** Writes every analysis chart as `<dir>/<name>.svg` and `.png`; returns the paths written. */
export async function writeAnalysisCharts(
  result: AnalysisResult,
  dir: string,
  options: RenderOptions & { datasetName?: string } = {},
): Promise<string[]> {
  const written: string[] = [];
  for (const [name, spec] of Object.entries(analysisChartSpecs(result, options.datasetName))) {
    const paths = await writeChart(spec, join(dir, name), options);
    written.push(paths.svg, paths.png);
  }
  return written;
}
