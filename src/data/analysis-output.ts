// Writes an analysis as files: JSON, Markdown, one CSV + Markdown table per table, and the charts.
// Used by `toxlora analyze --out` and by `toxlora demo`.
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { refuseOutputOverInput } from "../io/same-file.js";
import { writeAnalysisCharts } from "./analysis-charts.js";
import { type AnalysisResult, analysisTables, formatAnalysisMarkdown } from "./analyze.js";
import { renderCsvTable, renderMarkdownTable } from "./format.js";
import type { Dataset } from "./load.js";

/** Writes every table and chart of `result` into `dir`; returns the files written. */
export async function writeAnalysisOutputs(
  file: string,
  dataset: Dataset,
  result: AnalysisResult,
  dir: string,
): Promise<string[]> {
  const written: string[] = [];
  const put = async (name: string, content: string) => {
    refuseOutputOverInput([join(dir, name)], [file]);
    await writeFileAtomic(join(dir, name), content);
    written.push(join(dir, name));
  };
  await put("analysis.json", `${JSON.stringify({ file, schema: dataset.schema, ...result }, null, 2)}\n`);
  await put("analysis.md", formatAnalysisMarkdown(result, `Dataset analysis: ${file}`));
  for (const [name, table] of Object.entries(analysisTables(result))) {
    await put(`${name}.csv`, renderCsvTable(table));
    await put(`${name}.md`, `## ${table.title}\n\n${renderMarkdownTable(table)}\n`);
  }
  written.push(...(await writeAnalysisCharts(result, dir, { datasetName: file.split(/[\\/]/).pop() })));
  return written;
}
