// The one JSONL schema every tweet source (X API v2, archive exports, other tools' JSONL/CSV) is
// normalised to. Every row has every key (null when the source does not know it), so the files load
// into any dataframe tool without schema surprises.
import { normalizeTweetText } from "./normalize.js";

export interface PublicMetrics {
  retweet_count?: number;
  reply_count?: number;
  like_count?: number;
  quote_count?: number;
  bookmark_count?: number;
  impression_count?: number;
}

export type TweetSource = "x-api-v2" | "x-archive" | "jsonl" | "csv";

export interface TweetRecord {
  /** Tweet id as a decimal string (ids exceed 2^53, so never a number). */
  id: string;
  /** The text exactly as the source gave it (X escapes &, <, > as HTML entities). */
  text: string;
  /** ISO 8601 UTC time, e.g. "2024-05-01T12:00:00.000Z". */
  created_at: string | null;
  author_id: string | null;
  author_username: string | null;
  lang: string | null;
  conversation_id: string | null;
  public_metrics: PublicMetrics | null;
  /** Hashtags, mentions, URLs… as the source gave them (X API v2 `entities`). */
  entities: unknown;
  source: TweetSource;
  /** Only with `--normalize`: see `normalizeTweetText`. */
  text_normalized?: string;
}

/** Optional normalisation applied to a record on output. */
export function withNormalized(rec: TweetRecord, normalize: boolean): TweetRecord {
  return normalize ? { ...rec, text_normalized: normalizeTweetText(rec.text) } : rec;
}

/** A bad field in an input row; the message names the place (file:line) and the field. */
export class TweetInputError extends Error {
  constructor(
    readonly where: string,
    readonly field: string,
    problem: string,
  ) {
    super(`${where}: field "${field}": ${problem}`);
    this.name = "TweetInputError";
  }
}

const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};
// The archive / API v1.1 format: "Wed Oct 10 20:19:24 +0000 2018".
const V1_DATE_RE =
  /^[A-Z][a-z]{2} ([A-Z][a-z]{2}) (\d{1,2}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2}) (\d{4})$/;

/** Parse a tweet time (ISO 8601, the v1.1/archive format, or epoch seconds/ms) to ISO UTC; null if unknown. */
export function parseTweetTime(value: unknown): string | null {
  if (value === undefined || value === null || value === "") return null;
  if (typeof value === "number") {
    // Epoch seconds (10 digits today) or milliseconds.
    const ms = value < 1e11 ? value * 1000 : value;
    return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
  }
  if (typeof value !== "string") return null;
  const s = value.trim();
  const m = V1_DATE_RE.exec(s);
  if (m) {
    const [, mon, day, hh, mm, ss, sign, oh, om, year] = m;
    const month = MONTHS[mon as string];
    if (month === undefined) return null;
    const utc = Date.UTC(Number(year), month, Number(day), Number(hh), Number(mm), Number(ss));
    const offsetMin = (Number(oh) * 60 + Number(om)) * (sign === "-" ? -1 : 1);
    return new Date(utc - offsetMin * 60_000).toISOString();
  }
  if (/^\d{9,13}$/.test(s)) return parseTweetTime(Number(s));
  // ISO 8601 and RFC 2822 variants; anything Date cannot read is reported by the caller.
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** An id given as a string or a safe integer; big JSON numbers have already lost digits, so they are refused. */
function idString(v: unknown, where: string, field: string): string | null {
  if (v === undefined || v === null || v === "") return null;
  if (typeof v === "string") {
    const s = v.trim();
    if (!/^\d+$/.test(s)) throw new TweetInputError(where, field, `not a numeric id: ${JSON.stringify(v)}`);
    return s;
  }
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new TweetInputError(
        where,
        field,
        `id ${v} is a JSON number too large to be exact; write ids as strings (or id_str)`,
      );
    }
    return String(v);
  }
  throw new TweetInputError(where, field, `expected a string id, got ${typeof v}`);
}

function optString(v: unknown): string | null {
  return typeof v === "string" && v !== "" ? v : null;
}

function optCount(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && /^\d+$/.test(v.trim())) return Number(v);
  return undefined;
}

function metricsFrom(obj: Obj): PublicMetrics | null {
  const src = isObj(obj.public_metrics) ? obj.public_metrics : obj;
  const m: PublicMetrics = {};
  const pick = (key: keyof PublicMetrics, ...names: string[]) => {
    for (const n of names) {
      const c = optCount(src[n]);
      if (c !== undefined) {
        m[key] = c;
        return;
      }
    }
  };
  pick("retweet_count", "retweet_count", "retweets");
  pick("reply_count", "reply_count", "replies");
  pick("like_count", "like_count", "favorite_count", "likes");
  pick("quote_count", "quote_count", "quotes");
  pick("bookmark_count", "bookmark_count");
  pick("impression_count", "impression_count");
  return Object.keys(m).length > 0 ? m : null;
}

/** Context for converting one object: where it came from, and defaults (e.g. the archive's account). */
export interface ToRecordContext {
  where: string;
  source: TweetSource;
  defaultAuthorId?: string | null;
  defaultAuthorUsername?: string | null;
  /** author_id → username, from an API page's `includes.users`. */
  usernames?: Map<string, string>;
}

/**
 * Convert one tweet-like object to a TweetRecord. Understands X API v2 tweets, archive / v1.1 tweets
 * (`id_str`, `full_text`, `user`), `{tweet: {...}}` wrappers, and already-normalised records.
 */
export function toTweetRecord(input: unknown, ctx: ToRecordContext): TweetRecord {
  if (!isObj(input)) throw new TweetInputError(ctx.where, "(row)", "expected a JSON object");
  const obj = isObj(input.tweet) ? input.tweet : input;

  const id = idString(obj.id_str ?? obj.id ?? obj.tweet_id, ctx.where, "id");
  if (id === null) throw new TweetInputError(ctx.where, "id", "missing");

  // Long posts (> 280 chars) carry their full text in note_tweet; `text` is then truncated.
  const note = isObj(obj.note_tweet) ? optString(obj.note_tweet.text) : null;
  const rawText = note ?? obj.full_text ?? obj.text;
  if (typeof rawText !== "string") {
    throw new TweetInputError(ctx.where, "text", rawText === undefined ? "missing" : "not a string");
  }

  let createdAt: string | null = null;
  if (obj.created_at !== undefined && obj.created_at !== null && obj.created_at !== "") {
    createdAt = parseTweetTime(obj.created_at);
    if (createdAt === null) {
      throw new TweetInputError(ctx.where, "created_at", `unreadable time ${JSON.stringify(obj.created_at)}`);
    }
  }

  const user = isObj(obj.user) ? obj.user : null; // v1.1 shape
  const authorId =
    idString(obj.author_id ?? user?.id_str ?? user?.id, ctx.where, "author_id") ??
    ctx.defaultAuthorId ??
    null;
  const authorUsername =
    optString(obj.author_username) ??
    optString(user?.screen_name) ??
    (authorId !== null ? ctx.usernames?.get(authorId) : undefined) ??
    (authorId === (ctx.defaultAuthorId ?? null) ? ctx.defaultAuthorUsername : null) ??
    null;

  const rec: TweetRecord = {
    id,
    text: rawText,
    created_at: createdAt,
    author_id: authorId,
    author_username: authorUsername,
    lang: optString(obj.lang),
    conversation_id: idString(obj.conversation_id, ctx.where, "conversation_id"),
    public_metrics: metricsFrom(obj),
    entities: obj.entities ?? null,
    // Records that already went through toxlora keep their original source.
    source: isTweetSource(obj.source) ? obj.source : ctx.source,
  };
  return rec;
}

function isTweetSource(v: unknown): v is TweetSource {
  return v === "x-api-v2" || v === "x-archive" || v === "jsonl" || v === "csv";
}
