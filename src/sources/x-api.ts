// X API v2 search client: recent search (`/2/tweets/search/recent`) or full-archive search
// (`/2/tweets/search/all`), paginated with next_token, appending one normalised JSON object per tweet
// to a JSONL file. Resumable: after each page is appended and fsynced, a cursor state file next to the
// output is replaced atomically, so a re-run (after Ctrl-C, a crash, a 401…) continues where it stopped
// with no duplicates and no gaps.
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { setTimeout as sleepTimer } from "node:timers/promises";
import { writeJsonAtomicSync } from "../io/atomic.js";
import { VERSION } from "../version.js";
import { appendDurable, ensureParentDir, readIds, truncatePartialLine } from "./files.js";
import { type TweetRecord, toTweetRecord, withNormalized } from "./tweet.js";

export const DEFAULT_BASE_URL = "https://api.x.com";

/** Fields requested for every tweet. note_tweet holds the full text of posts longer than 280 chars. */
export const TWEET_FIELDS = [
  "id",
  "text",
  "created_at",
  "lang",
  "author_id",
  "conversation_id",
  "public_metrics",
  "entities",
  "note_tweet",
];

/** Why a fetch stopped without an error. */
export type FetchStop = "end" | "max" | "interrupted" | "already-complete";

export type XApiErrorKind =
  | "unauthorized"
  | "forbidden"
  | "usage-cap"
  | "rate-limit"
  | "bad-request"
  | "malformed-body"
  | "no-results"
  | "redirect"
  | "server"
  | "network"
  | "state";

/** A fetch that cannot continue. The message is one line a user can act on. */
export class XApiError extends Error {
  constructor(
    readonly kind: XApiErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "XApiError";
  }
}

export interface FetchTweetsOptions {
  /** Final X search query (see buildSearchQuery). */
  query: string;
  /** Output JSONL file; appended to, and `<out>.state.json` is kept beside it. */
  out: string;
  /** App bearer token. Sent only in the Authorization header; never logged or written. */
  bearerToken: string;
  /** Default https://api.x.com. */
  baseUrl?: string;
  /** Full-archive search instead of the last 7 days. */
  archive?: boolean;
  /** ISO 8601 times → start_time / end_time. */
  since?: string;
  until?: string;
  /** Stop when the output file holds this many tweets (counting tweets from earlier runs). */
  max?: number;
  /** max_results per request (10–100 recent, 10–500 archive). */
  pageSize?: number;
  /** Add `text_normalized` to every row. */
  normalize?: boolean;
  /** Abort (e.g. on Ctrl-C): the fetch stops between pages with the file and state consistent. */
  signal?: AbortSignal;
  /** Retries for 5xx / network errors (default 5) and for 429s (default 10), each counted per page. */
  maxRetries?: number;
  maxRateLimitRetries?: number;
  /** Exponential backoff: base × 2^attempt, capped, with jitter (defaults 1 s, 60 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Give up (resumably) instead of waiting longer than this for a rate-limit reset (default 20 min). */
  maxRateLimitWaitMs?: number;
  /** Per-request timeout (default 30 s). */
  requestTimeoutMs?: number;
  /** Minimum time between requests (default 1 s for the archive endpoint, which allows 1 request/s; else 0). */
  minIntervalMs?: number;
  /** Messages for stderr, one per call. */
  log?: (line: string) => void;
  /** Transient status (the rate-limit countdown); a terminal may overwrite the previous one. */
  status?: (line: string) => void;
  // Injected for tests.
  fetch?: typeof fetch;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
  random?: () => number;
}

export interface FetchTweetsResult {
  stop: FetchStop;
  /** Tweets appended by this run. */
  written: number;
  /** Tweets in the output file now. */
  total: number;
  /** Tweets the API returned that were already in the file. */
  duplicates: number;
  /** Pages received by this run. */
  pages: number;
  stateFile: string;
}

/** The cursor state written next to the output after every page. */
export interface FetchState {
  version: 1;
  endpoint: "recent" | "all";
  query: string;
  since: string | null;
  until: string | null;
  /** Token of the next page to request; null = the first page. */
  nextToken: string | null;
  /** True once the API returned a page without next_token. */
  done: boolean;
  /** Tweets in the output file. */
  count: number;
  pages: number;
  updatedAt: string;
}

/** Shape of a search response (only the parts used). */
interface SearchPage {
  data?: unknown[];
  includes?: { users?: { id?: string; username?: string }[] };
  meta?: { result_count?: number; next_token?: string };
  errors?: { title?: string; detail?: string; message?: string }[];
}

export function stateFileFor(out: string): string {
  return `${out}.state.json`;
}

/** Normalise an ISO time for X (RFC 3339, whole seconds); throws on an unreadable time. */
export function toXTime(value: string, name: string): string {
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new Error(`${name}: not an ISO 8601 date/time: ${JSON.stringify(value)}`);
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
}

const defaultSleep = (ms: number, signal?: AbortSignal) => sleepTimer(ms, undefined, { signal });

class Interrupted extends Error {}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === "AbortError" || err instanceof Interrupted);
}

/** Search X and append the results to `opts.out`, resuming from its state file when there is one. */
export async function fetchTweets(opts: FetchTweetsOptions): Promise<FetchTweetsResult> {
  const token = opts.bearerToken;
  if (!token) throw new XApiError("unauthorized", "no bearer token (set X_BEARER_TOKEN)");
  // Defence in depth: nothing we print may contain the token, even if a server echoes it back.
  const scrub = (s: string) => s.split(token).join("***");
  const log = (s: string) => opts.log?.(scrub(s));
  const status = (s: string) => (opts.status ?? opts.log)?.(scrub(s));
  const sleep = opts.sleep ?? defaultSleep;
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const doFetch = opts.fetch ?? fetch;
  const archive = opts.archive ?? false;
  const pageMax = archive ? 500 : 100;
  const pageSize = Math.min(pageMax, Math.max(10, opts.pageSize ?? pageMax));
  const maxRetries = opts.maxRetries ?? 5;
  const maxRateLimitRetries = opts.maxRateLimitRetries ?? 10;
  const retryBase = opts.retryBaseMs ?? 1000;
  const retryMax = opts.retryMaxMs ?? 60_000;
  const maxWait = opts.maxRateLimitWaitMs ?? 20 * 60_000;
  const minInterval = opts.minIntervalMs ?? (archive ? 1000 : 0);
  const signal = opts.signal;

  const url = new URL(
    archive ? "/2/tweets/search/all" : "/2/tweets/search/recent",
    checkBaseUrl(opts.baseUrl ?? DEFAULT_BASE_URL),
  );
  const since = opts.since !== undefined ? toXTime(opts.since, "--since") : null;
  const until = opts.until !== undefined ? toXTime(opts.until, "--until") : null;

  // --- Resume: repair the output, load its ids, check the state belongs to this query. ---
  const stateFile = stateFileFor(opts.out);
  const cut = truncatePartialLine(opts.out);
  if (cut > 0) log(`${opts.out}: removed an incomplete last line (${cut} bytes) left by an interrupted run`);
  const ids = await readIds(opts.out);
  const fresh: FetchState = {
    version: 1,
    endpoint: archive ? "all" : "recent",
    query: opts.query,
    since,
    until,
    nextToken: null,
    done: false,
    count: ids.size,
    pages: 0,
    updatedAt: new Date(now()).toISOString(),
  };
  const state = existsSync(stateFile) ? loadState(stateFile, fresh) : fresh;
  state.count = ids.size;
  const result: FetchTweetsResult = {
    stop: "end",
    written: 0,
    total: ids.size,
    duplicates: 0,
    pages: 0,
    stateFile,
  };
  if (state.done) {
    log(`${opts.out}: already complete (${ids.size} tweets); delete ${stateFile} to search again`);
    return { ...result, stop: "already-complete" };
  }
  if (state.nextToken !== null || ids.size > 0) log(`resuming: ${ids.size} tweets already in ${opts.out}`);

  let lastRequestAt = Number.NEGATIVE_INFINITY;

  /** Wait `ms` in one-second steps, showing how long is left. */
  const countdown = async (ms: number, reason: string) => {
    let left = ms;
    while (left > 0) {
      status(`${reason}: waiting ${Math.ceil(left / 1000)} s`);
      const step = Math.min(1000, left);
      await sleep(step, signal);
      left -= step;
    }
  };

  const backoff = (attempt: number) => {
    const ceiling = Math.min(retryMax, retryBase * 2 ** attempt);
    return Math.round(ceiling / 2 + (random() * ceiling) / 2); // "equal jitter": half fixed, half random
  };

  /** GET one page, handling retries and rate limits; returns the parsed body and response headers. */
  const getPage = async (pageUrl: URL, pageNo: number): Promise<{ body: SearchPage; headers: Headers }> => {
    let failures = 0;
    let rateLimited = 0;
    for (;;) {
      if (signal?.aborted) throw new Interrupted();
      const elapsed = now() - lastRequestAt;
      if (elapsed < minInterval) await sleep(minInterval - elapsed, signal);
      lastRequestAt = now();

      let res: Response;
      let text: string;
      try {
        const timeout = AbortSignal.timeout(opts.requestTimeoutMs ?? 30_000);
        res = await fetchSameOrigin(doFetch, pageUrl, {
          headers: { authorization: `Bearer ${token}`, "user-agent": `toxlora/${VERSION}` },
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        text = await res.text();
      } catch (err) {
        if (err instanceof XApiError) throw err;
        if (signal?.aborted) throw new Interrupted();
        if (failures >= maxRetries) {
          throw new XApiError("network", `network error after ${failures + 1} attempts: ${describe(err)}`);
        }
        const wait = backoff(failures++);
        log(
          `page ${pageNo}: network error (${describe(err)}); retry ${failures}/${maxRetries} in ${fmtS(wait)}`,
        );
        await sleep(wait, signal);
        continue;
      }

      if (res.status === 429) {
        const detail = problemText(text);
        if (/usage.?cap/i.test(text)) {
          throw new XApiError("usage-cap", `X API usage cap reached (429): ${detail}`, 429);
        }
        if (rateLimited >= maxRateLimitRetries) {
          throw new XApiError("rate-limit", `still rate limited after ${rateLimited} waits (429)`, 429);
        }
        rateLimited++;
        const resetWait = waitUntilReset(res.headers, now());
        const wait = resetWait ?? retryAfter(res.headers) ?? backoff(rateLimited);
        if (wait > maxWait) {
          const at = new Date(now() + wait).toISOString();
          throw new XApiError("rate-limit", `rate limited (429) until ${at}; re-run then to continue`, 429);
        }
        log(`page ${pageNo}: rate limited (429); waiting ${fmtS(wait)} for the limit to reset`);
        await countdown(wait, "rate limited");
        continue;
      }
      if (res.status === 401) {
        throw new XApiError(
          "unauthorized",
          `X API rejected the bearer token (401 Unauthorized): check X_BEARER_TOKEN`,
          401,
        );
      }
      if (res.status === 403) {
        const hint = archive ? "; full-archive search needs a Pro or Enterprise plan" : "";
        throw new XApiError(
          "forbidden",
          `X API refused access (403 Forbidden): ${problemText(text)}${hint}; check your app's access level`,
          403,
        );
      }
      if (res.status >= 500) {
        if (failures >= maxRetries) {
          throw new XApiError(
            "server",
            `X API server error ${res.status} after ${failures + 1} attempts`,
            res.status,
          );
        }
        const wait = retryAfter(res.headers) ?? backoff(failures);
        failures++;
        log(`page ${pageNo}: server error ${res.status}; retry ${failures}/${maxRetries} in ${fmtS(wait)}`);
        await sleep(wait, signal);
        continue;
      }
      if (res.status < 200 || res.status >= 300) {
        throw new XApiError("bad-request", `X API error ${res.status}: ${problemText(text)}`, res.status);
      }
      let body: SearchPage;
      try {
        body = JSON.parse(text) as SearchPage;
        if (typeof body !== "object" || body === null || Array.isArray(body))
          throw new Error("not a JSON object");
        if (body.data !== undefined && !Array.isArray(body.data)) throw new Error('"data" is not an array');
      } catch (err) {
        throw new XApiError(
          "malformed-body",
          `X API returned a malformed JSON body for page ${pageNo} (HTTP ${res.status}, ${text.length} chars: ` +
            `${JSON.stringify(text.slice(0, 60))}): ${(err as Error).message}`,
          res.status,
        );
      }
      // A search answer always has `meta`; a 200 with only `errors` (or nothing) is a failed request,
      // not an empty last page: taking it as the end would mark the fetch complete with pages missing.
      if (typeof body.meta !== "object" || body.meta === null) {
        const why = body.errors?.length
          ? `only errors (${problemText(text)})`
          : `no "meta" (${JSON.stringify(text.slice(0, 60))})`;
        if (failures >= maxRetries) {
          throw new XApiError(
            "no-results",
            `X API answered page ${pageNo} with ${why} after ${failures + 1} attempts`,
            res.status,
          );
        }
        const wait = backoff(failures);
        failures++;
        log(`page ${pageNo}: HTTP 200 with ${why}; retry ${failures}/${maxRetries} in ${fmtS(wait)}`);
        await sleep(wait, signal);
        continue;
      }
      return { body, headers: res.headers };
    }
  };

  // The output is opened on the first tweet to write (an error before any leaves no empty file).
  let fd: number | undefined;
  const append = (lines: string) => {
    if (lines === "") return;
    if (fd === undefined) {
      ensureParentDir(opts.out);
      fd = openSync(opts.out, "a");
    }
    appendDurable(fd, lines);
  };
  try {
    for (;;) {
      if (opts.max !== undefined && ids.size >= opts.max) {
        result.stop = "max";
        break;
      }
      if (signal?.aborted) {
        result.stop = "interrupted";
        break;
      }
      const pageToken = state.nextToken;
      const pageNo = state.pages + 1;
      const remaining = opts.max !== undefined ? opts.max - ids.size : pageSize;
      const pageUrl = new URL(url);
      const p = pageUrl.searchParams;
      p.set("query", opts.query);
      p.set("max_results", String(Math.min(pageSize, Math.max(10, remaining))));
      p.set("tweet.fields", TWEET_FIELDS.join(","));
      p.set("expansions", "author_id");
      p.set("user.fields", "username");
      if (since !== null) p.set("start_time", since);
      if (until !== null) p.set("end_time", until);
      if (pageToken !== null) p.set("next_token", pageToken);

      let page: { body: SearchPage; headers: Headers };
      try {
        page = await getPage(pageUrl, pageNo);
      } catch (err) {
        if (isAbort(err)) {
          result.stop = "interrupted";
          break;
        }
        throw err;
      }
      const { body, headers } = page;
      const usernames = new Map<string, string>();
      for (const u of body.includes?.users ?? []) {
        if (typeof u?.id === "string" && typeof u.username === "string") usernames.set(u.id, u.username);
      }
      if (body.errors?.length) {
        const first = body.errors[0];
        log(
          `page ${pageNo}: X API reported ${body.errors.length} partial error(s), e.g. ${first?.detail ?? first?.message ?? first?.title ?? "?"}`,
        );
      }

      // Keep the tweets not yet in the file; stop mid-page when --max is reached.
      let lines = "";
      let cutShort = false;
      for (const [i, raw] of (body.data ?? []).entries()) {
        const rec: TweetRecord = toTweetRecord(raw, {
          where: `X API page ${pageNo}, tweet ${i + 1}`,
          source: "x-api-v2",
          usernames,
        });
        if (ids.has(rec.id)) {
          result.duplicates++;
          continue;
        }
        if (opts.max !== undefined && ids.size >= opts.max) {
          cutShort = true;
          break;
        }
        ids.add(rec.id);
        lines += `${JSON.stringify(withNormalized(rec, opts.normalize ?? false))}\n`;
        result.written++;
      }
      append(lines);

      // A page cut short by --max is requested again next time (its rest is new, the kept part deduped),
      // so the state keeps pointing at it: no gap.
      const next = body.meta?.next_token ?? null;
      if (next !== null && next === pageToken) {
        throw new XApiError("bad-request", `X API returned the same next_token for page ${pageNo}; stopping`);
      }
      state.nextToken = cutShort ? pageToken : next;
      state.done = !cutShort && next === null;
      state.count = ids.size;
      state.pages++;
      state.updatedAt = new Date(now()).toISOString();
      writeJsonAtomicSync(stateFile, state);
      result.pages++;
      result.total = ids.size;
      log(`page ${pageNo}: ${body.data?.length ?? 0} tweets, ${ids.size} in ${opts.out}`);

      if (state.done) {
        result.stop = "end";
        break;
      }
      // Proactively wait when the window is used up rather than collecting a 429.
      if (
        headers.get("x-rate-limit-remaining") === "0" &&
        !(opts.max !== undefined && ids.size >= opts.max)
      ) {
        const wait = waitUntilReset(headers, now());
        if (wait !== null && wait > 0) {
          if (wait > maxWait) {
            const at = new Date(now() + wait).toISOString();
            throw new XApiError("rate-limit", `rate limit used up until ${at}; re-run then to continue`);
          }
          try {
            await countdown(wait, "rate limit used up");
          } catch (err) {
            if (isAbort(err)) {
              result.stop = "interrupted";
              break;
            }
            throw err;
          }
        }
      }
    }
  } catch (err) {
    if (err instanceof XApiError) {
      throw new XApiError(
        err.kind,
        scrub(
          `${err.message} (${ids.size} tweets saved in ${opts.out}; re-run the same command to continue)`,
        ),
        err.status,
      );
    }
    throw err;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  // A finished search with no tweets still leaves its (empty) output, as promised.
  if (result.stop === "end" && !existsSync(opts.out)) {
    ensureParentDir(opts.out);
    closeSync(openSync(opts.out, "a"));
  }
  result.total = ids.size;
  return result;
}

/**
 * `fetch` that follows redirects only within the request's origin (at most 5): a redirect to another
 * origin is an error. Following it would talk to a server we were not asked to use (fetch drops the
 * token there, and its answer would be taken for X's).
 */
async function fetchSameOrigin(doFetch: typeof fetch, url: URL, init: RequestInit): Promise<Response> {
  let at = url;
  for (let hop = 0; ; hop++) {
    const res = await doFetch(at, { ...init, redirect: "manual" });
    const location = res.headers.get("location");
    if (res.status < 300 || res.status >= 400 || location === null) return res;
    await res.body?.cancel();
    const next = new URL(location, at);
    if (next.origin !== at.origin) {
      throw new XApiError(
        "redirect",
        `X API redirected (HTTP ${res.status}) to another origin, ${next.origin}; not followed. Check --base-url`,
        res.status,
      );
    }
    if (hop >= 5) throw new XApiError("redirect", `more than 5 redirects from ${url.origin}`, res.status);
    at = next;
  }
}

/** Refuse to send a bearer token in clear text anywhere but this machine. */
function checkBaseUrl(base: string): string {
  let u: URL;
  try {
    u = new URL(base);
  } catch {
    throw new Error(`--base-url: not a URL: ${JSON.stringify(base)}`);
  }
  const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(u.hostname);
  if (u.protocol === "http:" && !loopback) {
    throw new Error(`--base-url: refusing to send the bearer token over plain http to ${u.host}; use https`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:")
    throw new Error(`--base-url: unsupported protocol ${u.protocol}`);
  return base;
}

function loadState(file: string, expected: FetchState): FetchState {
  let s: FetchState;
  try {
    s = JSON.parse(readFileSync(file, "utf8")) as FetchState;
  } catch (err) {
    throw new XApiError(
      "state",
      `${file}: unreadable state file (${(err as Error).message}); delete it to start over`,
    );
  }
  // Check the shape first: a truncated or hand-edited file may hold `null`, an array or another version.
  if (
    typeof s !== "object" ||
    s === null ||
    s.version !== 1 ||
    (s.nextToken !== null && typeof s.nextToken !== "string")
  ) {
    throw new XApiError("state", `${file}: unexpected state file content; delete it to start over`);
  }
  for (const key of ["endpoint", "query", "since", "until"] as const) {
    if (s[key] !== expected[key]) {
      throw new XApiError(
        "state",
        `${file}: this output was started with ${key} ${JSON.stringify(s[key])}, not ${JSON.stringify(expected[key])}; ` +
          "use another --out, or delete the output and its state file",
      );
    }
  }
  return s;
}

/** Milliseconds until `x-rate-limit-reset` (epoch seconds) plus a second of margin; null without the header. */
function waitUntilReset(headers: Headers, nowMs: number): number | null {
  const reset = Number(headers.get("x-rate-limit-reset"));
  if (!headers.has("x-rate-limit-reset") || !Number.isFinite(reset)) return null;
  // The margin covers clock skew between us and X; at least one second even if the reset has passed.
  return Math.max(1000, reset * 1000 - nowMs + 1000);
}

function retryAfter(headers: Headers): number | null {
  const v = headers.get("retry-after");
  if (v === null || !/^\d+$/.test(v.trim())) return null;
  return Number(v) * 1000;
}

/** The useful sentence of an X "problem" body, or a short snippet of whatever came back. */
function problemText(text: string): string {
  try {
    const b = JSON.parse(text) as {
      detail?: string;
      title?: string;
      errors?: { message?: string; detail?: string }[];
    };
    const e = b.errors?.[0];
    const msg = e?.message ?? e?.detail ?? b.detail ?? b.title;
    if (msg) return msg;
  } catch {
    // not JSON: fall through to a snippet
  }
  const snippet = text.replace(/\s+/g, " ").trim().slice(0, 120);
  return snippet === "" ? "(empty body)" : snippet;
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  if (err.name === "TimeoutError") return "request timed out";
  return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
}

function fmtS(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
