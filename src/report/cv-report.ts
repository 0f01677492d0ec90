// The report page of a cross-validation (`toxlora cv`): per fold, per label mean ± sd over the
// folds, and the pooled out-of-fold metrics, from <parent>/cv.json.
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { html, num, page, table } from "../html/html.js";
import { writeFileAtomic } from "../io/atomic.js";
import { CI_METRICS } from "../run/bootstrap.js";
import type { AverageMetrics, LabelMetrics } from "../run/metrics.js";
import { pathsRelativeToPage } from "../run/paths.js";
import { CV_FILE, type CvSummary, type MeanSd } from "../train/cv.js";
import { VERSION } from "../version.js";

const meanSd = (x: MeanSd): string => (x.mean === null ? "–" : `${num(x.mean)} ± ${num(x.sd)}`);

/**
 * Writes `<parent>/report.html` (or `out`) for a finished cross-validation; returns its path.
 * Local paths (the folds, their data, the data file) are shown relative to the page's folder
 * unless `showPaths`.
 */
export async function buildCvReport(
  parent: string,
  out = join(parent, "report.html"),
  options: { showPaths?: boolean } = {},
): Promise<string> {
  const s = JSON.parse(await readFile(join(parent, CV_FILE), "utf8")) as CvSummary;
  const header = ["label", ...CI_METRICS];
  const sdRows = [
    ...s.labels.map((l) => [l, ...CI_METRICS.map((m) => meanSd(s.meanSd.perLabel[l]?.[m] as MeanSd))]),
  ];
  const sdFooter = [
    ["micro average", ...CI_METRICS.map((m) => meanSd(s.meanSd.micro[m]))],
    ["macro average", ...CI_METRICS.map((m) => meanSd(s.meanSd.macro[m]))],
  ];
  const pooledRow = (name: string, m: LabelMetrics | AverageMetrics) => [
    name,
    (m as Partial<LabelMetrics>).support ?? "",
    ...CI_METRICS.map((k) => num(m[k])),
  ];
  const body = html`<header><h1>toxlora — ${s.folds}-fold cross-validation</h1>
<p>${s.data} · ${s.rows} rows · seed ${s.seed}</p></header>
<main>
<h2 id="folds">Folds<span class="ja">分割ごと</span></h2>
${table(
  ["fold", "run directory", "test rows", "macro F1", "micro F1"],
  s.perFold.map((f) => [f.fold, f.dir, f.rows, num(f.macroF1), num(f.microF1)]),
)}
<h2 id="mean-sd">Mean ± sd over the folds<span class="ja">分割間の平均 ± 標準偏差</span></h2>
${table(header, sdRows, "summary", sdFooter)}
<p class="note">Each fold's metrics at its own tuned thresholds; sd is the sample standard deviation over the ${s.folds} folds (how much the score moves with the rows it is tested on).</p>
<h2 id="pooled">Pooled out-of-fold<span class="ja">分割外予測をまとめた評価</span></h2>
${table(
  ["label", "support", ...CI_METRICS],
  s.labels.map((l) => pooledRow(l, s.pooled.perLabel[l] as LabelMetrics)),
  "summary",
  [pooledRow("micro average", s.pooled.micro), pooledRow("macro average", s.pooled.macro)],
)}
<p class="note">Every row is scored once, by the fold model that did not train on it (${s.rows} rows). Precision, recall and F1 come from the summed confusion tables (each row judged at its fold's thresholds); ROC-AUC and PR-AUC from the pooled probabilities.</p>
<p class="note">Made with toxlora ${VERSION}. Each fold is a full run directory with its own report (<code>toxlora report --run ${resolve(parent)}/fold-1</code>).</p>
</main>`;
  const text = await page(`toxlora — cross-validation (${s.folds} folds)`, body);
  const folds = s.perFold.map((f) => resolve(parent, f.dir));
  await writeFileAtomic(
    out,
    options.showPaths
      ? text
      : await pathsRelativeToPage(text, resolve(out, ".."), [parent, ...folds], [resolve(s.data)]),
  );
  return out;
}
