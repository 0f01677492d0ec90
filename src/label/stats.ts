// `label stats` and GET /api/stats: how far the labelling is, who did what at which pace, and how
// much the annotators agree — Krippendorff's alpha (nominal) per category over the posts that two
// or more annotators answered — with each category's rate of "yes" answers.
import { type AlphaResult, krippendorffAlphaNominal } from "./alpha.js";
import type { LabelStore } from "./store.js";

export interface AnnotatorStats {
  annotator: string;
  answers: number;
  skipped: number;
  /** Median seconds from serving a post to its first answer (skips included). */
  medianSeconds: number | null;
  meanSeconds: number | null;
}

export interface CategoryStats {
  label: string;
  /** Share of (non-skipped) answers that marked the category. */
  rate: number | null;
  alpha: number | null;
  /** Posts with two or more answers, which alpha is computed on. */
  alphaPosts: number;
}

export interface AnnotationStats {
  posts: number;
  answered: number;
  complete: number;
  answers: number;
  overlap: number;
  annotators: AnnotatorStats[];
  categories: CategoryStats[];
  /** Alpha of the overall label, when the schema has one. */
  overall?: { alpha: number | null; alphaPosts: number };
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const alphaOrNull = (r: AlphaResult) => (Number.isNaN(r.alpha) ? null : r.alpha);

export function labelStats(store: LabelStore): AnnotationStats {
  const rows = store.db
    .prepare(
      "SELECT post, annotator, labels, overall, skipped, served_at, answered_at FROM answers ORDER BY seq",
    )
    .all() as {
    post: number;
    annotator: string;
    labels: string | null;
    overall: string | null;
    skipped: number;
    served_at: number;
    answered_at: number;
  }[];
  const byAnnotator = new Map<string, { answers: number; skipped: number; seconds: number[] }>();
  for (const r of rows) {
    const a = byAnnotator.get(r.annotator) ?? { answers: 0, skipped: 0, seconds: [] };
    if (r.skipped) a.skipped++;
    else a.answers++;
    a.seconds.push(Math.max(0, r.answered_at - r.served_at) / 1000);
    byAnnotator.set(r.annotator, a);
  }
  const annotators = [...byAnnotator.entries()]
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
    .map(([annotator, a]) => ({
      annotator,
      answers: a.answers,
      skipped: a.skipped,
      medianSeconds: median(a.seconds),
      meanSeconds: a.seconds.length ? a.seconds.reduce((s, x) => s + x, 0) / a.seconds.length : null,
    }));

  // Reliability tables: one row per post, one column per annotator.
  const names = [...byAnnotator.keys()];
  const col = new Map(names.map((n, i) => [n, i]));
  const answered = rows.filter((r) => !r.skipped);
  const perPost = new Map<number, typeof answered>();
  for (const r of answered) perPost.set(r.post, [...(perPost.get(r.post) ?? []), r]);
  const table = (value: (r: (typeof answered)[number]) => string | number | null) =>
    [...perPost.values()].map((rs) => {
      const row: (string | number | null)[] = names.map(() => null);
      for (const r of rs) row[col.get(r.annotator) as number] = value(r);
      return row;
    });
  const categories = store.labels.map((label) => {
    const votes = answered.map((r) => (JSON.parse(r.labels as string) as Record<string, number>)[label] ?? 0);
    const a = krippendorffAlphaNominal(
      table((r) => (JSON.parse(r.labels as string) as Record<string, number>)[label] ?? 0),
    );
    return {
      label,
      rate: votes.length ? votes.reduce((s: number, v) => s + v, 0) / votes.length : null,
      alpha: alphaOrNull(a),
      alphaPosts: a.units,
    };
  });
  const progress = store.progress();
  const out: AnnotationStats = { ...progress, overlap: store.overlap, annotators, categories };
  if (store.overall.length > 0) {
    const a = krippendorffAlphaNominal(table((r) => r.overall));
    out.overall = { alpha: alphaOrNull(a), alphaPosts: a.units };
  }
  return out;
}

/** The stats as a few lines of text for the terminal. */
export function formatStats(s: AnnotationStats): string {
  const f = (x: number | null, d = 3) => (x === null ? "–" : x.toFixed(d));
  const lines = [
    `${s.posts} posts, ${s.answered} with an answer, ${s.complete} with ${s.overlap} (--overlap); ${s.answers} answers`,
    "",
    "annotator\tanswers\tskipped\tmedian s/post\tmean s/post",
    ...s.annotators.map(
      (a) => `${a.annotator}\t${a.answers}\t${a.skipped}\t${f(a.medianSeconds, 1)}\t${f(a.meanSeconds, 1)}`,
    ),
    "",
    "category\tyes rate\tKrippendorff α\tposts with ≥2 answers",
    ...s.categories.map((c) => `${c.label}\t${f(c.rate)}\t${f(c.alpha)}\t${c.alphaPosts}`),
  ];
  if (s.overall) lines.push(`(overall label)\t–\t${f(s.overall.alpha)}\t${s.overall.alphaPosts}`);
  return `${lines.join("\n")}\n`;
}
