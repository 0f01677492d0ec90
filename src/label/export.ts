// `label export`: the labelled posts as a training file in the database's label schema, so
// `toxlora train --data <export> --preset/--labels …` reads it like any other data set.
//
// Each category is decided by majority vote over the post's (non-skipped) answers. A tie — as many
// "yes" as "no", only possible with an even number of answers — follows `ties`: "positive" (the
// default: a post half the annotators call toxic in a category is treated as toxic in it, which
// keeps the rare positives a moderation model must learn) or "negative". Tied categories are listed
// in the row's `tie_labels`, so they can be found and re-labelled. The overall label is the most
// chosen one; a tie between values gives `has_toxic_expression` ("hard to say") when the schema has
// it, else the first tied value in the schema's order. When no annotator chose one, it follows
// from the categories (any category → toxic, none → nontoxic) where the schema has those values.

import { toJsonl } from "../data/write.js";
import { writeFileAtomic } from "../io/atomic.js";
import type { LabelStore } from "./store.js";

export type TieRule = "positive" | "negative";

export interface ExportOptions {
  /** Posts with fewer non-skipped answers are left out (default 1). */
  minVotes?: number;
  ties?: TieRule;
}

export interface ExportResult {
  rows: Record<string, unknown>[];
  /** Posts with answers but fewer than minVotes. */
  tooFewVotes: number;
  /** Category decisions that were ties. */
  ties: number;
}

interface PostAnswers {
  id: string;
  text: string;
  pick: string | null;
  answers: { labels: Record<string, number>; overall: string | null; note: string | null }[];
}

function answeredPosts(store: LabelStore): PostAnswers[] {
  const rows = store.db
    .prepare(
      `SELECT p.id AS post, p.ext_id, p.text, pl.pick, a.labels, a.overall, a.note FROM posts p
       JOIN answers a ON a.post = p.id AND a.skipped = 0 LEFT JOIN plan pl ON pl.post = p.id
       ORDER BY p.id, a.seq`,
    )
    .all() as {
    post: number;
    ext_id: string;
    text: string;
    pick: string | null;
    labels: string;
    overall: string | null;
    note: string | null;
  }[];
  const out: PostAnswers[] = [];
  let lastPost = -1;
  for (const r of rows) {
    if (r.post !== lastPost) out.push({ id: r.ext_id, text: r.text, pick: r.pick, answers: [] });
    lastPost = r.post;
    out[out.length - 1]?.answers.push({ labels: JSON.parse(r.labels), overall: r.overall, note: r.note });
  }
  return out;
}

/** The most chosen overall value, with the tie rule above; undefined when nobody chose one. */
export function overallVote(chosen: readonly string[], choices: readonly string[]): string | undefined {
  if (chosen.length === 0) return undefined;
  const counts = new Map<string, number>();
  for (const c of chosen) counts.set(c, (counts.get(c) ?? 0) + 1);
  const best = Math.max(...counts.values());
  const top = choices.filter((c) => counts.get(c) === best);
  if (top.length === 1) return top[0];
  return choices.includes("has_toxic_expression") ? "has_toxic_expression" : top[0];
}

/** The export rows (see the file comment). */
export function exportRows(store: LabelStore, opts: ExportOptions = {}): ExportResult {
  const { schema, labels, overall: choices } = store;
  const minVotes = opts.minVotes ?? 1;
  const tieRule = opts.ties ?? "positive";
  const rows: Record<string, unknown>[] = [];
  let tooFewVotes = 0;
  let tieCount = 0;
  for (const p of answeredPosts(store)) {
    const n = p.answers.length;
    if (n < minVotes) {
      tooFewVotes++;
      continue;
    }
    const votes = Object.fromEntries(
      labels.map((l) => [l, p.answers.filter((a) => a.labels[l] === 1).length]),
    );
    const tied = labels.filter((l) => 2 * (votes[l] as number) === n);
    tieCount += tied.length;
    const positive = labels.filter(
      (l) => 2 * (votes[l] as number) > n || (tied.includes(l) && tieRule === "positive"),
    );
    const row: Record<string, unknown> = { [schema.idField]: p.id, [schema.textField]: p.text };
    const rule = schema.values;
    if (rule.kind === "values") {
      for (const l of schema.labels)
        row[l.field] = positive.includes(l.name) ? rule.positive[0] : rule.negative[0];
    } else if (rule.kind === "list") {
      row[rule.field] = positive;
    } else {
      // A vote-count schema: the counts themselves (its loader applies its own majority rule).
      for (const l of schema.labels) row[l.field] = votes[l.name];
      row[rule.annotatorsField] = n;
    }
    const overall =
      overallVote(
        p.answers.flatMap((a) => (a.overall === null ? [] : [a.overall])),
        choices,
      ) ?? derivedOverall(positive.length > 0, choices);
    if (overall !== undefined && schema.overall?.kind === "field") row[schema.overall.field] = overall;
    if (schema.overall?.kind === "votes") {
      for (const level of schema.overall.levels) row[level.field] = 0;
      for (const a of p.answers) {
        const level = schema.overall.levels.find((l) => l.value === (a.overall ?? overall));
        if (level) row[level.field] = (row[level.field] as number) + 1;
      }
    }
    row.votes = votes;
    row.annotators = n;
    if (tied.length > 0) row.tie_labels = tied;
    if (p.pick) row.sampled = p.pick;
    const notes = p.answers.flatMap((a) => (a.note ? [a.note] : []));
    if (notes.length > 0) row.notes = notes;
    rows.push(row);
  }
  return { rows, tooFewVotes, ties: tieCount };
}

function derivedOverall(anyPositive: boolean, choices: readonly string[]): string | undefined {
  const v = anyPositive ? "toxic" : "nontoxic";
  return choices.includes(v) ? v : undefined;
}

/** Writes the export to `out` (atomically). */
export async function exportLabels(
  store: LabelStore,
  out: string,
  opts: ExportOptions = {},
): Promise<ExportResult> {
  const result = exportRows(store, opts);
  await writeFileAtomic(out, toJsonl(result.rows));
  return result;
}
