// `tweets import`: tweets the user already has (an X archive's tweets.js, JSONL or JSON from other
// tools, CSV) → the same normalised JSONL that `tweets fetch` writes.
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { refuseOutputOverInput } from "../io/same-file.js";
import { parseCsv } from "./csv.js";
import { AtomicLineWriter } from "./files.js";
import {
  type ToRecordContext,
  type TweetRecord,
  type TweetSource,
  toTweetRecord,
  withNormalized,
} from "./tweet.js";

export type ImportFormat = "auto" | "archive" | "json" | "jsonl" | "csv" | "tsv";

export interface ImportOptions {
  format?: ImportFormat;
  /** Add `text_normalized`. */
  normalize?: boolean;
  log?: (line: string) => void;
}

export interface ImportResult {
  /** Tweets read from all inputs. */
  read: number;
  /** Rows written (after dropping repeated ids). */
  written: number;
  duplicates: number;
  files: { file: string; format: Exclude<ImportFormat, "auto">; tweets: number }[];
}

// The archive wraps its JSON in a script assignment: `window.YTD.tweets.part0 = [ ... ]`.
const ARCHIVE_PREFIX_RE = /^\s*window\.YTD\.[A-Za-z_]+\.part\d+\s*=\s*/;

/** Guess the format from the name and the first characters. */
export function detectFormat(file: string, text: string): Exclude<ImportFormat, "auto"> {
  if (ARCHIVE_PREFIX_RE.test(text.slice(0, 200))) return "archive";
  const ext = extname(file).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".tsv") return "tsv";
  if (ext === ".jsonl" || ext === ".ndjson") return "jsonl";
  const body = text.replace(/^\uFEFF/, "").trim();
  if (body.startsWith("[")) return "json";
  if (body.startsWith("{")) {
    // One pretty-printed JSON document (e.g. a saved API response) or one object per line? A single
    // line reads the same either way; JSONL then gives better error locations.
    if (!body.includes("\n")) return "jsonl";
    try {
      JSON.parse(body);
      return "json";
    } catch {
      return "jsonl";
    }
  }
  return "csv";
}

/** Read one file into tweet records. */
export function readTweetFile(
  file: string,
  format: ImportFormat = "auto",
): { format: Exclude<ImportFormat, "auto">; tweets: TweetRecord[] } {
  const text = readFileSync(file, "utf8");
  const fmt = format === "auto" ? detectFormat(file, text) : format;
  switch (fmt) {
    case "archive":
      return { format: fmt, tweets: readArchive(file, text) };
    case "json":
      return { format: fmt, tweets: readJsonDocument(file, text) };
    case "jsonl":
      return { format: fmt, tweets: readJsonl(file, text) };
    case "csv":
    case "tsv":
      return { format: fmt, tweets: readCsv(file, text, fmt === "tsv" ? "\t" : ",") };
  }
}

/** Import files into one JSONL (atomic write); the first occurrence of an id wins. */
export function importTweets(files: string[], out: string, opts: ImportOptions = {}): ImportResult {
  const result: ImportResult = { read: 0, written: 0, duplicates: 0, files: [] };
  const seen = new Set<string>();
  refuseOutputOverInput([out], files);
  const writer = new AtomicLineWriter(out);
  try {
    for (const file of files) {
      const { format, tweets } = readTweetFile(file, opts.format ?? "auto");
      result.files.push({ file, format, tweets: tweets.length });
      opts.log?.(`${file}: ${tweets.length} tweets (${format})`);
      for (const t of tweets) {
        result.read++;
        if (seen.has(t.id)) {
          result.duplicates++;
          continue;
        }
        seen.add(t.id);
        writer.write(`${JSON.stringify(withNormalized(t, opts.normalize ?? false))}\n`);
        result.written++;
      }
    }
    writer.commit();
  } catch (err) {
    writer.abort();
    throw err;
  }
  return result;
}

// --- X archive -------------------------------------------------------------------------------------

/** The archive's own account (account.js beside tweets.js), which tweets.js items do not repeat. */
function readArchiveAccount(file: string): { id: string | null; username: string | null } {
  const accountFile = join(dirname(file), "account.js");
  if (!existsSync(accountFile)) return { id: null, username: null };
  try {
    const items = JSON.parse(readFileSync(accountFile, "utf8").replace(ARCHIVE_PREFIX_RE, "")) as {
      account?: { accountId?: string; username?: string };
    }[];
    const acc = items[0]?.account;
    return { id: acc?.accountId ?? null, username: acc?.username ?? null };
  } catch (err) {
    throw new Error(`${accountFile}: unreadable archive account file (${(err as Error).message})`);
  }
}

function readArchive(file: string, text: string): TweetRecord[] {
  const body = text
    .replace(/^\uFEFF/, "")
    .replace(ARCHIVE_PREFIX_RE, "")
    .replace(/;\s*$/, "");
  let items: unknown;
  try {
    items = JSON.parse(body);
  } catch (err) {
    throw new Error(`${file}: not a readable X archive file (${(err as Error).message})`);
  }
  if (!Array.isArray(items)) throw new Error(`${file}: expected an array after "window.YTD…="`);
  const account = basename(file) === "account.js" ? { id: null, username: null } : readArchiveAccount(file);
  // JSON.parse loses line numbers, so rows are located by their position in the array.
  return items.map((item, i) =>
    toTweetRecord(item, {
      where: `${file}: item ${i + 1}`,
      source: "x-archive",
      defaultAuthorId: account.id,
      defaultAuthorUsername: account.username,
    }),
  );
}

// --- JSON / JSONL ----------------------------------------------------------------------------------

/** One parsed value → records: a tweet, or a saved API page `{data: [...], includes: {users}}`. */
function recordsFromValue(value: unknown, ctx: ToRecordContext): TweetRecord[] {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const v = value as { data?: unknown; includes?: { users?: { id?: string; username?: string }[] } };
    if (Array.isArray(v.data)) {
      const usernames = new Map<string, string>();
      for (const u of v.includes?.users ?? []) {
        if (typeof u.id === "string" && typeof u.username === "string") usernames.set(u.id, u.username);
      }
      return v.data.map((t, i) => toTweetRecord(t, { ...ctx, where: `${ctx.where}: data[${i}]`, usernames }));
    }
  }
  return [toTweetRecord(value, ctx)];
}

function readJsonDocument(file: string, text: string): TweetRecord[] {
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (err) {
    throw new Error(`${file}: invalid JSON (${(err as Error).message})`);
  }
  const source: TweetSource = "jsonl";
  if (Array.isArray(value)) {
    return value.flatMap((v, i) => recordsFromValue(v, { where: `${file}: item ${i + 1}`, source }));
  }
  return recordsFromValue(value, { where: file, source });
}

function readJsonl(file: string, text: string): TweetRecord[] {
  const out: TweetRecord[] = [];
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (const [i, line] of lines.entries()) {
    if (line.trim() === "") continue;
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new Error(`${where}: invalid JSON (${(err as Error).message})`);
    }
    out.push(...recordsFromValue(value, { where, source: "jsonl" }));
  }
  return out;
}

// --- CSV -------------------------------------------------------------------------------------------

// Column names other tools use, after lower-casing and dropping everything but letters and digits.
const CSV_COLUMNS: Record<string, string[]> = {
  id: ["id", "idstr", "tweetid", "statusid", "postid"],
  text: ["text", "fulltext", "tweet", "tweettext", "content", "body"],
  created_at: ["createdat", "date", "datetime", "timestamp", "time", "postedat"],
  author_id: ["authorid", "userid", "ownerid"],
  author_username: ["authorusername", "username", "screenname", "handle"],
  lang: ["lang", "language"],
  conversation_id: ["conversationid"],
  retweet_count: ["retweetcount", "retweets"],
  reply_count: ["replycount", "replies"],
  like_count: ["likecount", "favoritecount", "likes", "favorites"],
  quote_count: ["quotecount", "quotes"],
};

function readCsv(file: string, text: string, delimiter: string): TweetRecord[] {
  const records = parseCsv(text, file, delimiter);
  const header = records.shift();
  if (header === undefined) return [];
  const key = (h: string) => h.toLowerCase().replace(/[^a-z0-9]/g, "");
  const colOf = new Map<string, number>();
  for (const [canonical, aliases] of Object.entries(CSV_COLUMNS)) {
    const idx = header.fields.findIndex((h) => aliases.includes(key(h)));
    if (idx >= 0) colOf.set(canonical, idx);
  }
  for (const required of ["id", "text"]) {
    if (!colOf.has(required)) {
      throw new Error(
        `${file}:${header.line}: no "${required}" column (header: ${header.fields.join(", ")}; ` +
          `accepted names: ${(CSV_COLUMNS[required] ?? []).join(", ")})`,
      );
    }
  }
  return records.map((r) => {
    if (r.fields.length !== header.fields.length) {
      throw new Error(
        `${file}:${r.line}: ${r.fields.length} fields, but the header has ${header.fields.length}`,
      );
    }
    const obj: Record<string, string> = {};
    for (const [canonical, idx] of colOf) {
      const v = r.fields[idx];
      if (v !== undefined && (v !== "" || canonical === "text")) obj[canonical] = v;
    }
    return toTweetRecord(obj, { where: `${file}:${r.line}`, source: "csv" });
  });
}
