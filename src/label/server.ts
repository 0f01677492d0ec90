// `toxlora label serve`: the annotation page and its JSON API (node:http, no framework).
//
//   GET  /api/next?annotator=NAME            → {id, text, labels, overall?, suggested?} or 204 when none is left
//   POST /api/answer {id, annotator, labels: {label: bool}, overall?, note?} (or {id, annotator, skip: true}) → 200
//   GET  /api/history?annotator=NAME[&before=SEQ] → the annotator's previous answer (Backspace), or 204
//   GET  /api/stats                          → progress, annotators, Krippendorff's alpha per category
//   GET  /healthz, GET / (the page)
//
// Errors are serve's 4xx JSON bodies `{"error": {"code", "message"}}`, with serve's security headers,
// Host check and JSON-only POSTs (src/serve/server.ts). With a token, every request needs it: as
// `Authorization: Bearer <token>`, or the cookie the page sets when opened once as /?token=<token>.
import { createHash, timingSafeEqual } from "node:crypto";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { japaneseFontFiles } from "../charts/fonts.js";
import { FONT_PATH } from "../serve/page.js";
import {
  HttpError,
  hostChecker,
  isJson,
  listenOn,
  readBody,
  SECURITY_HEADERS,
  sendError,
  sendFile,
  sendJson,
  sendPage,
} from "../serve/server.js";
import { renderLabelPage } from "./page.js";
import { labelStats } from "./stats.js";
import { AnswerError, type AnswerInput, type LabelStore } from "./store.js";

export interface LabelServerOptions {
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Shared secret; required (by the CLI) when `host` is not a loopback address. */
  token?: string;
  allowedHosts?: string[];
  /** Shown in the page header. */
  title?: string;
  log?: (line: string) => void;
  logError?: (line: string) => void;
}

export interface RunningLabelServer {
  url: string;
  port: number;
  server: http.Server;
  close(): Promise<void>;
}

const TOKEN_COOKIE = "toxlora_label_token";
const MAX_BODY = 64 * 1024;
const MAX_NOTE = 2000;

/** A valid annotator name: 1–64 characters after trimming, no control characters. */
export function checkAnnotator(value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new HttpError(
      400,
      "missing_annotator",
      'an annotator name is required (?annotator=NAME or "annotator")',
    );
  }
  const name = value.trim();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if ([...name].length > 64 || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new HttpError(
      400,
      "invalid_annotator",
      "an annotator name has at most 64 characters and no control characters",
    );
  }
  return name;
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) {
      try {
        return decodeURIComponent(v.join("="));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Constant-time comparison (of hashes, so lengths do not leak either). */
function sameSecret(a: string, b: string): boolean {
  const h = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

/** Validates an answer body. */
export function parseAnswerBody(body: Buffer): AnswerInput {
  let o: unknown;
  try {
    o = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new HttpError(400, "invalid_json", `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    throw new HttpError(
      400,
      "invalid_body",
      'request body must be a JSON object like {"id", "annotator", "labels"}',
    );
  }
  const b = o as Record<string, unknown>;
  if (typeof b.id !== "string" && typeof b.id !== "number") {
    throw new HttpError(400, "invalid_id", 'field "id" must be the id GET /api/next gave');
  }
  if (b.skip !== undefined && typeof b.skip !== "boolean")
    throw new HttpError(400, "invalid_skip", '"skip" must be true or false');
  if (b.note !== undefined && (typeof b.note !== "string" || [...b.note].length > MAX_NOTE)) {
    throw new HttpError(400, "invalid_note", `"note" must be a string of at most ${MAX_NOTE} characters`);
  }
  if (b.overall !== undefined && typeof b.overall !== "string")
    throw new HttpError(400, "invalid_overall", '"overall" must be a string');
  return {
    id: String(b.id),
    annotator: checkAnnotator(b.annotator),
    labels: b.labels as Record<string, boolean> | undefined,
    overall: b.overall as string | undefined,
    note: b.note === "" ? undefined : (b.note as string | undefined),
    skip: b.skip === true,
  };
}

/** Starts the label server; resolves once it is listening. */
export async function createLabelServer(
  store: LabelStore,
  options: LabelServerOptions = {},
): Promise<RunningLabelServer> {
  const host = options.host ?? "127.0.0.1";
  const token = options.token;
  const hostAllowed = hostChecker(host, options.allowedHosts ?? []);
  const logError = options.logError ?? ((line: string) => process.stderr.write(`${line}\n`));
  const page = renderLabelPage({
    labels: store.labels,
    overall: store.overall,
    title: options.title,
  });
  const fontFile = japaneseFontFiles()[0] as string;

  const authorized = (req: IncomingMessage): boolean => {
    if (token === undefined) return true;
    const auth = req.headers.authorization ?? "";
    const given = auth.startsWith("Bearer ") ? auth.slice(7) : cookie(req, TOKEN_COOKIE);
    return given !== undefined && sameSecret(given, token);
  };

  type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;
  const routes: Record<string, Record<string, Handler>> = {
    "/api/next": {
      GET: (_req, res, url) => {
        const post = store.next(checkAnnotator(url.searchParams.get("annotator")));
        if (!post) {
          res.writeHead(204, { "cache-control": "no-store" });
          res.end();
          return;
        }
        sendJson(res, 200, post);
      },
    },
    "/api/answer": {
      POST: async (req, res) => {
        const input = parseAnswerBody(await readBody(req, MAX_BODY));
        const { changed } = store.answer(input);
        sendJson(res, 200, { ok: true, id: input.id, changed, progress: store.progress() });
      },
    },
    "/api/history": {
      GET: (_req, res, url) => {
        const beforeParam = url.searchParams.get("before");
        const before = beforeParam === null ? undefined : Number(beforeParam);
        if (before !== undefined && !Number.isInteger(before)) {
          throw new HttpError(400, "invalid_before", '"before" must be an answer number (seq)');
        }
        const given = store.history(checkAnnotator(url.searchParams.get("annotator")), before);
        if (!given) {
          res.writeHead(204, { "cache-control": "no-store" });
          res.end();
          return;
        }
        sendJson(res, 200, { ...given, labelNames: store.labels, overallChoices: store.overall });
      },
    },
    "/api/stats": { GET: (_req, res) => sendJson(res, 200, labelStats(store)) },
    "/healthz": { GET: (_req, res) => sendJson(res, 200, { status: "ok", ...store.progress() }) },
    "/": {
      GET: (_req, res, url) => {
        const given = url.searchParams.get("token");
        if (token !== undefined && given !== null) {
          // Opened with ?token=: keep it in a cookie and drop it from the address bar.
          if (!sameSecret(given, token)) throw new HttpError(401, "unauthorized", "wrong token");
          res.writeHead(303, {
            location: "/",
            "set-cookie": `${TOKEN_COOKIE}=${encodeURIComponent(given)}; Path=/; HttpOnly; SameSite=Strict`,
            "cache-control": "no-store",
          });
          res.end();
          return;
        }
        sendPage(res, page);
      },
    },
    [FONT_PATH]: { GET: (_req, res) => sendFile(res, fontFile, "font/ttf", "public, max-age=86400") },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!hostAllowed(req.headers.host)) {
      throw new HttpError(
        403,
        "host_not_allowed",
        `Host ${JSON.stringify(req.headers.host ?? "")} is not this server's`,
      );
    }
    if (req.method === "POST" && !isJson(req.headers["content-type"])) {
      throw new HttpError(
        415,
        "unsupported_media_type",
        "send the body as JSON with Content-Type: application/json",
      );
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    const route = routes[url.pathname];
    if (!route) throw new HttpError(404, "not_found", `no route for ${url.pathname}`);
    const isPageWithToken = url.pathname === "/" && url.searchParams.has("token");
    if (url.pathname !== FONT_PATH && !isPageWithToken && !authorized(req)) {
      throw new HttpError(
        401,
        "unauthorized",
        "this server needs its token: open the page once as /?token=<token>, or send Authorization: Bearer <token>",
      );
    }
    const method = req.method === "HEAD" && route.GET ? "GET" : (req.method ?? "");
    const handler = route[method];
    if (!handler) {
      const allow = Object.keys(route).join(", ");
      throw new HttpError(
        405,
        "method_not_allowed",
        `${req.method} is not allowed on ${url.pathname}; use ${allow}`,
        {
          allow,
        },
      );
    }
    await handler(req, res, url);
  };

  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    res.on("finish", () => {
      const path = (req.url ?? "").split("?")[0];
      options.log?.(`${req.method} ${path} ${res.statusCode} ${(performance.now() - t0).toFixed(1)}ms`);
    });
    handle(req, res).catch((err: unknown) => {
      let httpErr: HttpError;
      if (err instanceof HttpError) httpErr = err;
      else if (err instanceof AnswerError) httpErr = new HttpError(err.status, err.code, err.message);
      else {
        logError(
          `internal error on ${req.method} ${req.url?.split("?")[0]}: ${err instanceof Error ? err.message : String(err)}`,
        );
        httpErr = new HttpError(500, "internal_error", "internal error; the server log has the details");
      }
      if (res.headersSent) res.destroy();
      else sendError(res, httpErr);
    });
  });
  const port = await listenOn(server, host, options.port ?? 8090);
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
