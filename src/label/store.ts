// The labelling workflow on top of the database: importing the pool, the serving plan, handing
// out posts (leases) and recording answers. Every state change is one SQLite transaction taken
// with BEGIN IMMEDIATE, so two servers (or two requests) on the same file never both hand out the
// last free copy of a post, and an answer is on disk before the next post is served.
import { DataError } from "../data/errors.js";
import type { LabelSchema } from "../data/schema.js";
import { type InputFormat, readInputs } from "../predict/io.js";
import { type Db, getMeta, openDb, setMeta } from "./db.js";
import { nearDuplicate, type PlannedPost } from "./plan.js";

export interface StoreOptions {
  /** Most annotators per post (default: the database's last, else 1). */
  overlap?: number;
  /** How long a served post stays reserved for its annotator, in ms (default 15 minutes). */
  leaseMs?: number;
  /** The run whose scores are offered as `suggested` (its key in the scores table). */
  runKey?: string;
}

/** A post handed to an annotator. */
export interface ServedPost {
  id: string;
  text: string;
  labels: string[];
  overall?: string[];
  suggested?: Record<string, number>;
}

export interface AnswerInput {
  id: string;
  annotator: string;
  /** Every label of the schema, true or false; omitted when skipped. */
  labels?: Record<string, boolean>;
  overall?: string;
  note?: string;
  skip?: boolean;
}

/** An answer already given, as the page shows it again after Backspace. */
export interface GivenAnswer {
  seq: number;
  id: string;
  text: string;
  labels: Record<string, boolean> | null;
  overall: string | null;
  note: string | null;
  skipped: boolean;
}

/** Why an answer was refused (the server turns it into a 4xx). */
export class AnswerError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The overall labels of a schema that an annotator can choose from (none when it has no overall). */
export function overallChoices(schema: LabelSchema): string[] {
  const o = schema.overall;
  if (o?.kind === "field") return o.values ? [...o.values] : [];
  if (o?.kind === "votes") return [...new Set(o.levels.map((l) => l.value))];
  return [];
}

/**
 * The schema stored in the database, set from `given` (else `fallback`) on first use. A later
 * `given` must be the same: answers recorded for one set of labels cannot be read under another.
 */
export function ensureSchema(
  db: Db,
  given: LabelSchema | undefined,
  file: string,
  fallback?: LabelSchema,
): LabelSchema {
  const stored = getMeta(db, "schema");
  if (stored === undefined) {
    const schema = given ?? fallback;
    if (!schema) throw new Error(`${file} is new: say which labels to collect (--preset, --labels or --run)`);
    setMeta(db, "schema", JSON.stringify(schema));
    return schema;
  }
  const schema = JSON.parse(stored) as LabelSchema;
  if (given && JSON.stringify(given) !== stored) {
    throw new Error(
      `${file} collects labels ${schema.labels.map((l) => l.name).join(", ")} (schema ${schema.name}); ` +
        `the options given describe ${given.labels.map((l) => l.name).join(", ")} (schema ${given.name}). ` +
        "Use another --db, or leave the schema options out to keep the database's",
    );
  }
  return schema;
}

export class LabelStore {
  readonly labels: string[];
  readonly overall: string[];
  readonly overlap: number;
  readonly leaseMs: number;
  runKey: string | undefined;

  private constructor(
    readonly db: Db,
    readonly file: string,
    readonly schema: LabelSchema,
    opts: StoreOptions,
  ) {
    this.labels = schema.labels.map((l) => l.name);
    this.overall = overallChoices(schema);
    this.overlap = opts.overlap ?? Number(getMeta(db, "overlap") ?? 1);
    this.leaseMs = opts.leaseMs ?? 15 * 60_000;
    this.runKey = opts.runKey;
    if (!Number.isInteger(this.overlap) || this.overlap < 1)
      throw new Error("overlap must be a whole number ≥ 1");
  }

  /**
   * Opens `file`; a new database takes `schema` (else `fallback`), an existing one must match a
   * given `schema`. The overlap defaults to the one the database was last served with.
   */
  static open(
    file: string,
    schema: LabelSchema | undefined,
    opts: StoreOptions = {},
    fallback?: LabelSchema,
  ): LabelStore {
    const db = openDb(file);
    try {
      return new LabelStore(db, file, ensureSchema(db, schema, file, fallback), opts);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  close(): void {
    this.db.close();
  }

  postCount(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM posts").get() as { n: number }).n;
  }

  /**
   * Adds the posts of a pool file (JSONL/CSV/TSV/TXT); posts already there (same id, same text) are
   * left alone, so importing twice is harmless. An id that comes back with another text is an error.
   */
  async importPool(
    file: string,
    opts: { format?: InputFormat; textField?: string; idField?: string } = {},
  ): Promise<{ added: number; existing: number }> {
    const find = this.db.prepare("SELECT text FROM posts WHERE ext_id = ?");
    const insert = this.db.prepare("INSERT INTO posts (ext_id, text, source) VALUES (?, ?, ?)");
    let added = 0;
    let existing = 0;
    let batch: { id: string; text: string; line: number }[] = [];
    const flush = this.db.transaction(() => {
      for (const r of batch) {
        const had = find.get(r.id) as { text: string } | undefined;
        if (had === undefined) {
          insert.run(r.id, r.text, `${file}:${r.line}`);
          added++;
        } else if (had.text === r.text) existing++;
        else {
          throw new DataError({
            file,
            line: r.line,
            reason: `id ${JSON.stringify(r.id)} is already in ${this.file} with another text; give each post its own id`,
          });
        }
      }
      batch = [];
    });
    for await (const rec of readInputs(file, opts)) {
      if (rec.text.trim() === "") continue;
      batch.push({ id: String(rec.id ?? rec.line), text: rec.text, line: rec.line });
      if (batch.length >= 1000) flush.immediate();
    }
    flush.immediate();
    return { added, existing };
  }

  /** The key the current plan was built for (see {@link setPlan}). */
  planKey(): string | undefined {
    return getMeta(this.db, "plan");
  }

  /** Replaces the serving order (answers and leases are kept: they live apart from the order). */
  setPlan(order: readonly PlannedPost[], key: string): void {
    const insert = this.db.prepare("INSERT INTO plan (rank, post, pick) VALUES (?, ?, ?)");
    this.db
      .transaction(() => {
        this.db.exec("DELETE FROM plan");
        order.forEach((p, rank) => {
          insert.run(rank, p.post, p.pick);
        });
        setMeta(this.db, "plan", key);
      })
      .immediate();
  }

  /**
   * The post `annotator` should label next, reserved for them, or undefined when none is left. A
   * post is free for them when they have not answered it and its answers plus others' open leases
   * are fewer than the overlap. The one they already hold is served again (a reload).
   */
  next(annotator: string, now = Date.now()): ServedPost | undefined {
    const post = this.db
      .transaction((): number | undefined => {
        const held = this.db
          .prepare(
            `SELECT l.post FROM leases l WHERE l.annotator = ? AND l.expires_at > ?
             AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.post = l.post AND a.annotator = l.annotator)
             ORDER BY l.served_at DESC LIMIT 1`,
          )
          .get(annotator, now) as { post: number } | undefined;
        if (held) {
          this.db
            .prepare("UPDATE leases SET expires_at = ? WHERE post = ? AND annotator = ?")
            .run(now + this.leaseMs, held.post, annotator);
          return held.post;
        }
        const candidates = this.db
          .prepare(
            `SELECT p.post, s.text FROM plan p JOIN posts s ON s.id = p.post
             WHERE s.answers < @overlap
               AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.post = p.post AND a.annotator = @who)
               AND s.answers + (SELECT count(*) FROM leases l
                                WHERE l.post = p.post AND l.annotator <> @who AND l.expires_at > @now) < @overlap
             ORDER BY p.rank LIMIT 16`,
          )
          .all({ overlap: this.overlap, who: annotator, now }) as { post: number; text: string }[];
        if (candidates.length === 0) return undefined;
        const last = this.lastText(annotator);
        const pick =
          candidates.find((c) => last === undefined || !nearDuplicate(last, c.text)) ??
          (candidates[0] as { post: number });
        this.db
          .prepare(
            `INSERT INTO leases (post, annotator, served_at, expires_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (post, annotator) DO UPDATE SET served_at = excluded.served_at, expires_at = excluded.expires_at`,
          )
          .run(pick.post, annotator, now, now + this.leaseMs);
        return pick.post;
      })
      .immediate();
    return post === undefined ? undefined : this.served(post);
  }

  /** The text of the post `annotator` answered last (to keep near-duplicates apart). */
  private lastText(annotator: string): string | undefined {
    const row = this.db
      .prepare(
        "SELECT s.text FROM answers a JOIN posts s ON s.id = a.post WHERE a.annotator = ? ORDER BY a.seq DESC LIMIT 1",
      )
      .get(annotator) as { text: string } | undefined;
    return row?.text;
  }

  private served(post: number): ServedPost {
    const row = this.db.prepare("SELECT ext_id, text FROM posts WHERE id = ?").get(post) as {
      ext_id: string;
      text: string;
    };
    const out: ServedPost = { id: row.ext_id, text: row.text, labels: this.labels };
    if (this.overall.length > 0) out.overall = this.overall;
    if (this.runKey !== undefined) {
      const s = this.db
        .prepare("SELECT probs FROM scores WHERE run = ? AND post = ?")
        .get(this.runKey, post) as { probs: string } | undefined;
      const runLabels = getMeta(this.db, `run-labels:${this.runKey}`);
      if (s && runLabels) {
        const names = JSON.parse(runLabels) as string[];
        const probs = JSON.parse(s.probs) as number[];
        out.suggested = Object.fromEntries(names.map((n, j) => [n, probs[j] as number]));
      }
    }
    return out;
  }

  /**
   * Records (or, for a post the annotator answered before, changes) an answer. A first answer needs
   * the post to have been served to this annotator and, unless skipped, a free copy: answers never
   * exceed the overlap, whatever the timing.
   */
  answer(input: AnswerInput, now = Date.now()): { changed: boolean } {
    const labels = input.skip ? null : this.checkLabels(input.labels);
    if (input.overall !== undefined && !this.overall.includes(input.overall)) {
      throw new AnswerError(
        400,
        "invalid_overall",
        this.overall.length
          ? `"overall" must be one of ${this.overall.join(", ")}`
          : `this schema has no overall label; leave "overall" out`,
      );
    }
    return this.db
      .transaction(() => {
        const post = this.db.prepare("SELECT id, answers FROM posts WHERE ext_id = ?").get(input.id) as
          | { id: number; answers: number }
          | undefined;
        if (!post) throw new AnswerError(404, "unknown_post", `no post with id ${JSON.stringify(input.id)}`);
        const before = this.db
          .prepare("SELECT skipped FROM answers WHERE post = ? AND annotator = ?")
          .get(post.id, input.annotator) as { skipped: number } | undefined;
        const lease = this.db
          .prepare("SELECT served_at FROM leases WHERE post = ? AND annotator = ?")
          .get(post.id, input.annotator) as { served_at: number } | undefined;
        if (!before && !lease) {
          throw new AnswerError(
            409,
            "not_served",
            `post ${input.id} was not served to ${input.annotator}; ask GET /api/next for a post`,
          );
        }
        const counts = !input.skip && (before === undefined || before.skipped === 1);
        if (counts && post.answers >= this.overlap) {
          throw new AnswerError(
            409,
            "post_full",
            `post ${input.id} already has ${post.answers} answer(s), the most --overlap allows; ask GET /api/next for another`,
          );
        }
        const values = {
          post: post.id,
          who: input.annotator,
          labels: labels === null ? null : JSON.stringify(labels),
          overall: input.skip ? null : (input.overall ?? null),
          note: input.note ?? null,
          skipped: input.skip ? 1 : 0,
          now,
        };
        if (before) {
          this.db
            .prepare(
              `UPDATE answers SET labels = @labels, overall = @overall, note = @note, skipped = @skipped,
               updated_at = @now WHERE post = @post AND annotator = @who`,
            )
            .run(values);
        } else {
          this.db
            .prepare(
              `INSERT INTO answers (post, annotator, labels, overall, note, skipped, served_at, answered_at, updated_at)
               VALUES (@post, @who, @labels, @overall, @note, @skipped, @served, @now, @now)`,
            )
            .run({ ...values, served: lease?.served_at ?? now });
          this.db
            .prepare("DELETE FROM leases WHERE post = ? AND annotator = ?")
            .run(post.id, input.annotator);
        }
        const delta = (input.skip ? 0 : 1) - (before === undefined || before.skipped === 1 ? 0 : 1);
        if (delta !== 0)
          this.db.prepare("UPDATE posts SET answers = answers + ? WHERE id = ?").run(delta, post.id);
        return { changed: before !== undefined };
      })
      .immediate();
  }

  private checkLabels(given: Record<string, boolean> | undefined): Record<string, 0 | 1> {
    if (given === undefined || given === null || typeof given !== "object" || Array.isArray(given)) {
      throw new AnswerError(
        400,
        "invalid_labels",
        `"labels" must be an object {label: true|false} (or send "skip": true)`,
      );
    }
    for (const k of Object.keys(given)) {
      if (!this.labels.includes(k)) {
        throw new AnswerError(
          400,
          "unknown_label",
          `unknown label ${JSON.stringify(k)} (labels: ${this.labels.join(", ")})`,
        );
      }
    }
    const out: Record<string, 0 | 1> = {};
    for (const l of this.labels) {
      const v = given[l];
      if (typeof v !== "boolean") {
        throw new AnswerError(
          400,
          "invalid_labels",
          `"labels.${l}" must be true or false (every label is required)`,
        );
      }
      out[l] = v ? 1 : 0;
    }
    return out;
  }

  /** The annotator's answer given just before answer number `before` (default: their latest). */
  history(annotator: string, before?: number): GivenAnswer | undefined {
    const row = this.db
      .prepare(
        `SELECT a.seq, s.ext_id, s.text, a.labels, a.overall, a.note, a.skipped FROM answers a
         JOIN posts s ON s.id = a.post WHERE a.annotator = ? AND a.seq < ? ORDER BY a.seq DESC LIMIT 1`,
      )
      .get(annotator, before ?? Number.MAX_SAFE_INTEGER) as
      | {
          seq: number;
          ext_id: string;
          text: string;
          labels: string | null;
          overall: string | null;
          note: string | null;
          skipped: number;
        }
      | undefined;
    if (!row) return undefined;
    const labels = row.labels === null ? null : (JSON.parse(row.labels) as Record<string, number>);
    return {
      seq: row.seq,
      id: row.ext_id,
      text: row.text,
      labels: labels && Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, v === 1])),
      overall: row.overall,
      note: row.note,
      skipped: row.skipped === 1,
    };
  }

  /** Answer counts: how many posts have at least one answer, how many answers, how many are left. */
  progress(): { posts: number; answered: number; answers: number; complete: number } {
    return this.db
      .prepare(
        `SELECT count(*) AS posts, coalesce(sum(answers > 0), 0) AS answered, coalesce(sum(answers), 0) AS answers,
         coalesce(sum(answers >= ?), 0) AS complete FROM posts`,
      )
      .get(this.overlap) as { posts: number; answered: number; answers: number; complete: number };
  }
}
