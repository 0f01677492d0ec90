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
import { createReadStream, existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { basename, dirname, join } from "node:path";
import { ExplainInputError, explain, isExplainable } from "../explain/explain.js";
import { scoredFields } from "../predict/output.js";
import type { Classifier, Scored } from "../predict/types.js";
import { japaneseFontFiles } from "../report/fonts.js";
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

function sendJson(
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

function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, { error: { code: err.code, message: err.message } }, err.headers);
}

/** Reads the body up to `limit` bytes; larger bodies are refused without reading them all. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new HttpError(413, "body_too_large", `request body exceeds ${limit} bytes`, { connection: "close" });
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on("data", (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        // Stop buffering; the connection is closed once the 413 is sent.
        req.removeAllListeners("data");
        req.resume();
        reject(tooLarge());
        return;
      }
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
        const body = await readBody(req, maxBodyBytes);
        const texts = parseClassifyBody(body, { maxBatch, maxTextLength });
        const scored = await batcher.submit(texts).catch((err: unknown) => {
          throw new HttpError(500, "internal_error", `classification failed: ${messageOf(err)}`);
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
            throw new HttpError(500, "internal_error", `explanation failed: ${messageOf(err)}`);
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
        }),
    },
    "/": {
      GET: (_req, res) => {
        res.writeHead(200, {
          "content-type": "text/html; charset=utf-8",
          "content-length": Buffer.byteLength(page),
          "cache-control": "no-store",
          "content-security-policy":
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; font-src 'self'; connect-src 'self'",
        });
        res.end(page);
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
        const html = await readFile(reportPath);
        res.writeHead(200, {
          "content-type": "text/html; charset=utf-8",
          "content-length": html.length,
          "cache-control": "no-store",
        });
        res.end(html);
      },
    },
    [FONT_PATH]: {
      GET: (_req, res) => sendFile(res, fontFile, "font/ttf", "public, max-age=86400"),
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
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
    res.on("finish", () => {
      options.log?.(`${req.method} ${req.url} ${res.statusCode} ${(performance.now() - t0).toFixed(1)}ms`);
    });
    handle(req, res).catch((err: unknown) => {
      const httpErr =
        err instanceof HttpError
          ? err
          : new HttpError(500, "internal_error", `internal error: ${messageOf(err)}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // With "connection: close" (body too large) Node closes the socket after the response.
      sendError(res, httpErr);
    });
  });
  // Malformed HTTP (not just bad JSON) is answered with a 400 rather than a silent reset.
  server.on("clientError", (_err, socket) => {
    if (socket.writable) {
      const body = JSON.stringify({ error: { code: "bad_request", message: "malformed HTTP request" } });
      socket.end(
        `HTTP/1.1 400 Bad Request\r\ncontent-type: ${JSON_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    } else {
      socket.destroy();
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8080, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
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

async function sendFile(res: ServerResponse, file: string, type: string, cache: string): Promise<void> {
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
