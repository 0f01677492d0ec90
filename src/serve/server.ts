// `toxlora serve`: a small HTTP server around a Classifier (node:http, no framework).
//
//   POST /v1/classify  {"texts": ["...", ...]}  → {labels, thresholds, results: [{probs, decisions, flagged}]}
//   POST /v1/explain   {"text": "...", "labels"?: [...], "method"?, "steps"?} → {explanations: [...]}
//   GET  /v1/labels    → {labels, thresholds}
//   GET  /healthz      → {status: "ok", ...}
//   GET  /             → a page to try the classifier in a browser
//   GET  /report       → the run's HTML report, when there is one (its images under /imgs/)
//
// Every bad request gets a 4xx JSON body `{"error": {"code", "message"}}`; nothing a client sends
// can crash the process. Concurrent requests are scored together (see batcher.ts). The server
// listens on 127.0.0.1 unless another host is given.
import { isUtf8 } from "node:buffer";
import { createReadStream, existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { type AddressInfo, isIP } from "node:net";
import { basename, dirname, join } from "node:path";
import { japaneseFontFiles } from "../charts/fonts.js";
import { ExplainInputError, explain, isExplainable } from "../explain/explain.js";
import { scoredFields } from "../run/output.js";
import { pathsRelativeToRun } from "../run/paths.js";
import type { Classifier, Scored } from "../run/types.js";
import { MicroBatcher } from "./batcher.js";
import { FONT_PATH, renderPage } from "./page.js";

export interface ServeOptions {
  /** TCP port (default 8080; 0 picks a free one). */
  port?: number;
  /** Interface to listen on (default 127.0.0.1: this machine only). */
  host?: string;
  /** Most texts per request, and per `predict` call (default 32). */
  maxBatch?: number;
  /** Longest text accepted, in characters (default 20,000). */
  maxTextLength?: number;
  /** Largest request body accepted, in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** How long a request waits for others to share its batch, in ms (default 5). */
  batchWaitMs?: number;
  /** The run's HTML report, served at /report and linked from the page. */
  reportPath?: string;
  /** Shown on the page, e.g. the run directory's name. */
  title?: string;
  /** One line per request (method, path, status, milliseconds); default: none. */
  log?: (line: string) => void;
  /**
   * Internal errors with their details (which a response never shows); default: stderr.
   */
  logError?: (line: string) => void;
  /**
   * Most texts waiting to be scored (default 32 × maxBatch). A request that would exceed it is
   * answered 503 with Retry-After instead of queued, so memory stays bounded under any load.
   */
  maxQueue?: number;
  /** Most request-body bytes being received or waiting at once (default 32 MiB); beyond it: 503. */
  maxQueueBytes?: number;
  /**
   * Host names (besides the listening address, localhost and loopback addresses) accepted in the
   * Host header; others get 403, which stops DNS-rebinding pages from reaching the server.
   */
  allowedHosts?: string[];
  /** Show absolute local paths in /report (default: relative to the run directory). */
  showPaths?: boolean;
  /** The run directory, to make report paths relative. */
  runDir?: string;
  /** Refuse (400 invalid_utf8) a body that is not valid UTF-8, instead of reading it with U+FFFD. */
  strictUtf8?: boolean;
}

export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  host: string;
  port: number;
  server: http.Server;
  batcher: MicroBatcher;
  /** Stops accepting connections and waits for requests in progress. */
  close(): Promise<void>;
}

/** A client error: HTTP status, a stable machine-readable code and a message for people. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const JSON_TYPE = "application/json; charset=utf-8";

/**
 * Sent with every response: no MIME sniffing, no framing (clickjacking), no referrer, and a CSP that
 * allows nothing (the page and the report set their own, also without framing).
 */
export const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
};

export function isJson(contentType: string | undefined): boolean {
  return (contentType ?? "").split(";")[0]?.trim().toLowerCase() === "application/json";
}

const WILDCARD = new Set(["0.0.0.0", "::", "[::]"]);
const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];

/**
 * Whether a Host header names this server: the listening address, localhost / loopback, or an
 * allowed name; on a wildcard address (0.0.0.0) also any IP address. A DNS-rebinding page reaches
 * the server under its own domain name, which is refused.
 */
export function hostChecker(
  listenHost: string,
  allowed: readonly string[],
): (host: string | undefined) => boolean {
  const bracket = (h: string) => (h.includes(":") && !h.startsWith("[") ? `[${h}]` : h);
  const names = new Set(
    [...LOOPBACK_NAMES, bracket(listenHost), ...allowed.map(bracket)].map((h) => h.toLowerCase()),
  );
  const wildcard = WILDCARD.has(listenHost);
  return (header) => {
    if (!header) return false;
    let name: string;
    try {
      name = new URL(`http://${header}`).hostname.toLowerCase();
    } catch {
      return false;
    }
    if (names.has(name)) return true;
    return wildcard && (isIP(name) !== 0 || (name.startsWith("[") && isIP(name.slice(1, -1)) !== 0));
  };
}

/** A page of the app (`serve`'s and `label serve`'s): its inline script may call this server only. */
export function sendPage(res: ServerResponse, page: string): void {
  res.writeHead(200, {
    "content-type": "text/html; charset=utf-8",
    "content-length": Buffer.byteLength(page),
    "cache-control": "no-store",
    "content-security-policy":
      "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; font-src 'self'; connect-src 'self'; frame-ancestors 'none'",
  });
  res.end(page);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": JSON_TYPE,
    "content-length": Buffer.byteLength(data),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(data);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, { error: { code: err.code, message: err.message } }, err.headers);
}

/** 503 for a full queue: the client should come back shortly. */
function busy(what: string): HttpError {
  return new HttpError(503, "busy", `the server is busy (${what}); retry shortly`, {
    "retry-after": "1",
    connection: "close",
  });
}

/**
 * Reads and drops what is left of a request body (at most `limit` more bytes) before `then` answers.
 * A 503 sent while the client is still uploading, followed by closing the socket, resets the
 * connection: the client sees a network error instead of the 503 and its Retry-After.
 */
function drainThen(req: IncomingMessage, limit: number, then: () => void): void {
  if (req.complete) {
    then();
    return;
  }
  let left = limit;
  let answered = false;
  const answer = () => {
    if (answered) return;
    answered = true;
    req.removeListener("data", count);
    then();
  };
  const count = (chunk: Buffer) => {
    left -= chunk.length;
    if (left < 0) answer(); // an endless body is not drained: answer now and close
  };
  req.removeAllListeners("data");
  req.on("data", count);
  req.once("end", answer);
  req.once("close", answer);
  req.once("error", answer);
  req.resume();
}

/**
 * Reads the body up to `limit` bytes; larger bodies are refused without reading them all. Each
 * chunk is first offered to `admit` (the server-wide byte budget), which refuses with a 503.
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  admit: (bytes: number) => boolean = () => true,
): Promise<Buffer> {
  const tooLarge = () =>
    new HttpError(413, "body_too_large", `request body exceeds ${limit} bytes`, { connection: "close" });
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const stop = (err: HttpError) => {
      done = true;
      // Stop buffering; the connection is closed once the error is sent.
      req.removeAllListeners("data");
      req.resume();
      reject(err);
    };
    req.on("data", (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) return stop(tooLarge());
      if (!admit(chunk.length)) return stop(busy("too many request bytes waiting"));
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (!done) resolve(Buffer.concat(chunks));
    });
    req.on("error", (err) => {
      if (!done) reject(new HttpError(400, "bad_request", `could not read the request body: ${err.message}`));
      done = true;
    });
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Number of Unicode characters (code points), the unit of `maxTextLength`. */
function charCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Validates a classify request body and returns its texts. */
export function parseClassifyBody(
  body: Buffer,
  limits: { maxBatch: number; maxTextLength: number },
): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new HttpError(400, "invalid_json", `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new HttpError(400, "invalid_body", 'request body must be a JSON object like {"texts": ["..."]}');
  }
  const texts = (parsed as Record<string, unknown>).texts;
  if (texts === undefined) {
    throw new HttpError(400, "missing_texts", 'field "texts" is missing: send {"texts": ["..."]}');
  }
  if (!Array.isArray(texts)) {
    throw new HttpError(400, "invalid_texts", 'field "texts" must be an array of strings');
  }
  if (texts.length > limits.maxBatch) {
    throw new HttpError(
      413,
      "too_many_texts",
      `"texts" has ${texts.length} items; at most ${limits.maxBatch} per request`,
    );
  }
  texts.forEach((t, i) => {
    if (typeof t !== "string") {
      throw new HttpError(
        400,
        "invalid_text",
        `texts[${i}] must be a string, got ${t === null ? "null" : typeof t}`,
      );
    }
    const n = charCount(t);
    if (n > limits.maxTextLength) {
      throw new HttpError(
        413,
        "text_too_long",
        `texts[${i}] has ${n} characters; at most ${limits.maxTextLength} are accepted`,
      );
    }
  });
  return texts as string[];
}

/** Most IG steps one explain request may ask for. */
export const MAX_EXPLAIN_STEPS = 128;

/** Validates an explain request body: {text, labels?, method?, steps?}. */
export function parseExplainBody(
  body: Buffer,
  maxTextLength: number,
): { text: string; labels?: string[]; method: "ig" | "grad-x-input"; steps: number } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new HttpError(400, "invalid_json", `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new HttpError(400, "invalid_body", 'request body must be a JSON object like {"text": "..."}');
  }
  const o = parsed as Record<string, unknown>;
  if (typeof o.text !== "string") {
    throw new HttpError(400, "invalid_text", 'field "text" must be a string: send {"text": "..."}');
  }
  if (charCount(o.text) > maxTextLength) {
    throw new HttpError(413, "text_too_long", `"text" has more than ${maxTextLength} characters`);
  }
  if (o.labels !== undefined && (!Array.isArray(o.labels) || !o.labels.every((l) => typeof l === "string"))) {
    throw new HttpError(400, "invalid_labels", 'field "labels" must be an array of label names');
  }
  const method = o.method ?? "ig";
  if (method !== "ig" && method !== "grad-x-input") {
    throw new HttpError(400, "invalid_method", 'field "method" must be "ig" or "grad-x-input"');
  }
  const steps = o.steps ?? 32;
  if (typeof steps !== "number" || !Number.isInteger(steps) || steps < 1 || steps > MAX_EXPLAIN_STEPS) {
    throw new HttpError(
      400,
      "invalid_steps",
      `field "steps" must be an integer from 1 to ${MAX_EXPLAIN_STEPS}`,
    );
  }
  return { text: o.text, labels: o.labels as string[] | undefined, method, steps };
}

/** The response of /v1/classify for scored texts. */
export function classifyResponse(classifier: Classifier, scored: Scored[]): unknown {
  const { labels } = classifier;
  return {
    labels,
    thresholds: classifier.thresholds,
    results: scored.map((s) => scoredFields(labels, s.probs, s.decisions)),
  };
}

/** A listen failure in words: which address, and what to do about it. */
function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  if (err.code === "EADDRINUSE")
    return new Error(
      `port ${port} is already in use on ${host} (another server?); choose another with --port <n>`,
    );
  if (err.code === "EACCES")
    return new Error(
      `not allowed to listen on ${where} (ports below 1024 need privileges); choose another with --port <n>`,
    );
  if (err.code === "EADDRNOTAVAIL")
    return new Error(`cannot listen on ${where}: ${host} is not an address of this machine (--host)`);
  return err;
}

/**
 * Listens on host:port (0 = any free port) and resolves with the port taken; a failure (port in use,
 * no permission, not an address here) rejects with one line saying what to do. Shared by `serve` and
 * `label serve`.
 */
export function listenOn(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => reject(listenError(err, host, port));
    server.once("error", failed);
    server.listen(port, host, () => {
      server.off("error", failed);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Starts the server; resolves once it is listening. */
export async function createServer(
  classifier: Classifier,
  options: ServeOptions = {},
): Promise<RunningServer> {
  const host = options.host ?? "127.0.0.1";
  const maxBatch = options.maxBatch ?? 32;
  const maxTextLength = options.maxTextLength ?? 20_000;
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const batcher = new MicroBatcher((texts) => classifier.predict(texts), {
    maxBatch,
    waitMs: options.batchWaitMs ?? 5,
  });
  const started = Date.now();
  const reportPath = options.reportPath;
  const maxQueue = options.maxQueue ?? 32 * maxBatch;
  const maxQueueBytes = options.maxQueueBytes ?? 32 * 1024 * 1024;
  const logError = options.logError ?? ((line: string) => process.stderr.write(`${line}\n`));
  const hostAllowed = hostChecker(host, options.allowedHosts ?? []);

  // Absolute local paths (run folder, model folder, data files) would tell any visitor of /report
  // how this machine is laid out: they are shown relative to the run unless showPaths.
  const runDir = options.runDir;
  const reportHtml = async (html: string): Promise<string> =>
    options.showPaths || runDir === undefined ? html : pathsRelativeToRun(html, runDir);

  // Request bytes received and not yet answered, across all requests: the memory a flood can pin.
  let queuedBytes = 0;
  let invalidUtf8Bodies = 0;
  const readTexts = async (req: IncomingMessage, res: ServerResponse): Promise<string[]> => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared <= maxBodyBytes && queuedBytes + declared > maxQueueBytes) {
      throw busy("too many request bytes waiting");
    }
    let held = 0;
    res.once("close", () => {
      queuedBytes -= held; // answered (or the client went away): the texts are no longer held
    });
    const body = await readBody(req, maxBodyBytes, (n) => {
      if (queuedBytes + n > maxQueueBytes) return false;
      queuedBytes += n;
      held += n;
      return true;
    });
    if (!isUtf8(body)) {
      if (options.strictUtf8) throw new HttpError(400, "invalid_utf8", "the request body is not valid UTF-8");
      invalidUtf8Bodies++; // read with U+FFFD in place of the bad bytes; counted in /healthz
    }
    return parseClassifyBody(body, { maxBatch, maxTextLength });
  };
  const page = renderPage({
    labels: classifier.labels,
    thresholds: classifier.thresholds,
    title: options.title,
    hasReport: reportPath !== undefined && existsSync(reportPath),
  });
  const fontFile = japaneseFontFiles()[0] as string;
  // Explanations run one at a time (each is a batched graph run of its own); a few more may wait.
  let explainChain: Promise<unknown> = Promise.resolve();
  let explainWaiting = 0;
  const MAX_EXPLAIN_WAITING = 4;

  // Routes: path → allowed methods → handler. HEAD is answered like GET (Node drops the body).
  type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;
  const routes: Record<string, Record<string, Handler>> = {
    "/v1/classify": {
      POST: async (req, res) => {
        const texts = await readTexts(req, res);
        if (batcher.pendingTexts + texts.length > maxQueue) {
          throw busy(`${batcher.pendingTexts} texts waiting, at most ${maxQueue}`);
        }
        const scored = await batcher.submit(texts).catch((err: unknown) => {
          logError(`classification failed: ${messageOf(err)}`);
          throw new HttpError(500, "internal_error", "classification failed; the server log has the details");
        });
        sendJson(res, 200, classifyResponse(classifier, scored));
      },
    },
    "/v1/explain": {
      POST: async (req, res) => {
        const body = await readBody(req, maxBodyBytes);
        const q = parseExplainBody(body, maxTextLength);
        if (!isExplainable(classifier)) {
          throw new HttpError(
            501,
            "not_explainable",
            "this classifier has no token attributions (not a transformer run)",
          );
        }
        if (explainWaiting >= MAX_EXPLAIN_WAITING) {
          throw new HttpError(503, "busy", "too many explanations in progress; retry shortly", {
            "retry-after": "1",
          });
        }
        explainWaiting++;
        const job = explainChain.then(() => explain(classifier, [q.text], q));
        explainChain = job.catch(() => undefined);
        const explanations = await job
          .catch((err: unknown) => {
            if (err instanceof ExplainInputError) throw new HttpError(400, "invalid_input", err.message);
            logError(`explanation failed: ${messageOf(err)}`);
            throw new HttpError(500, "internal_error", "explanation failed; the server log has the details");
          })
          .finally(() => {
            explainWaiting--;
          });
        sendJson(res, 200, { labels: classifier.labels, thresholds: classifier.thresholds, explanations });
      },
    },
    "/v1/labels": {
      GET: (_req, res) =>
        sendJson(res, 200, { labels: classifier.labels, thresholds: classifier.thresholds }),
    },
    "/healthz": {
      GET: (_req, res) =>
        sendJson(res, 200, {
          status: "ok",
          labels: classifier.labels.length,
          uptimeS: Math.round((Date.now() - started) / 1000),
          batches: batcher.stats.batches,
          texts: batcher.stats.texts,
          invalidUtf8Bodies,
        }),
    },
    "/": {
      GET: (_req, res) => {
        sendPage(res, page);
      },
    },
    "/report": {
      GET: async (_req, res) => {
        if (!reportPath || !existsSync(reportPath)) {
          throw new HttpError(
            404,
            "no_report",
            "this run has no report; make one with `toxlora report --run <dir>`",
          );
        }
        const html = Buffer.from(await reportHtml(await readFile(reportPath, "utf8")), "utf8");
        res.writeHead(200, {
          "content-type": "text/html; charset=utf-8",
          "content-length": html.length,
          "cache-control": "no-store",
          // The report is self-contained: inline styles and SVG, its images, fonts as data: URLs.
          "content-security-policy":
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; font-src data:; frame-ancestors 'none'",
        });
        res.end(html);
      },
    },
    [FONT_PATH]: {
      GET: (_req, res) => sendFile(res, fontFile, "font/ttf", "public, max-age=86400"),
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!hostAllowed(req.headers.host)) {
      throw new HttpError(
        403,
        "host_not_allowed",
        `Host ${JSON.stringify(req.headers.host ?? "")} is not this server's; start it with --allowed-host to accept it`,
      );
    }
    // A cross-site form can POST text/plain without a preflight; JSON cannot be sent that way.
    if (req.method === "POST" && !isJson(req.headers["content-type"])) {
      throw new HttpError(
        415,
        "unsupported_media_type",
        "send the body as JSON with Content-Type: application/json",
      );
    }
    const path = (req.url ?? "/").split("?")[0] as string;
    // The report's images (report.html links imgs/<name>, which resolves to /imgs/<name>).
    if (path.startsWith("/imgs/") && reportPath) {
      if (req.method !== "GET" && req.method !== "HEAD") {
        throw new HttpError(405, "method_not_allowed", `${req.method} is not allowed here`, {
          allow: "GET, HEAD",
        });
      }
      let name: string;
      try {
        name = decodeURIComponent(path.slice("/imgs/".length));
      } catch {
        throw new HttpError(400, "bad_request", "malformed URL");
      }
      // One plain file name: no folders, no "..".
      if (name !== basename(name) || name.startsWith(".") || !/\.(png|svg)$/.test(name)) {
        throw new HttpError(404, "not_found", `no such image: ${name}`);
      }
      const file = join(dirname(reportPath), "imgs", name);
      if (!existsSync(file)) throw new HttpError(404, "not_found", `no such image: ${name}`);
      return sendFile(res, file, name.endsWith(".png") ? "image/png" : "image/svg+xml", "no-store");
    }
    const route = routes[path];
    if (!route) throw new HttpError(404, "not_found", `no route for ${path}`);
    const method = req.method === "HEAD" && route.GET ? "GET" : (req.method ?? "");
    const handler = route[method];
    if (!handler) {
      const allow = Object.keys(route).flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m]));
      throw new HttpError(
        405,
        "method_not_allowed",
        `${req.method} is not allowed on ${path}; use ${allow.join(" or ")}`,
        {
          allow: allow.join(", "),
        },
      );
    }
    await handler(req, res);
  };

  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    res.on("finish", () => {
      options.log?.(`${req.method} ${req.url} ${res.statusCode} ${(performance.now() - t0).toFixed(1)}ms`);
    });
    handle(req, res).catch((err: unknown) => {
      if (!(err instanceof HttpError))
        logError(`internal error on ${req.method} ${req.url}: ${messageOf(err)}`);
      const httpErr =
        err instanceof HttpError
          ? err
          : new HttpError(500, "internal_error", "internal error; the server log has the details");
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // With "connection: close" (body too large) Node closes the socket after the response.
      if (httpErr.status === 503) drainThen(req, maxBodyBytes, () => sendError(res, httpErr));
      else sendError(res, httpErr);
    });
  });
  // Malformed HTTP (not just bad JSON) is answered with a 400 rather than a silent reset.
  server.on("clientError", (_err, socket) => {
    if (socket.writable) {
      const body = JSON.stringify({ error: { code: "bad_request", message: "malformed HTTP request" } });
      socket.end(
        `HTTP/1.1 400 Bad Request\r\ncontent-type: ${JSON_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
          `${Object.entries(SECURITY_HEADERS)
            .map(([k, v]) => `${k}: ${v}\r\n`)
            .join("")}connection: close\r\n\r\n${body}`,
      );
    } else {
      socket.destroy();
    }
  });

  const port = await listenOn(server, host, options.port ?? 8080);
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    host,
    port,
    server,
    batcher,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await batcher.drain();
    },
  };
}

export async function sendFile(
  res: ServerResponse,
  file: string,
  type: string,
  cache: string,
): Promise<void> {
  const { size } = await stat(file);
  res.writeHead(200, { "content-type": type, "content-length": size, "cache-control": cache });
  if (res.req.method === "HEAD") {
    res.end();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    createReadStream(file).on("error", reject).pipe(res).on("finish", resolve).on("error", reject);
  });
}
