// A loopback HTTP server that imitates the X API v2 search endpoints closely enough for the client:
// max_results / next_token pagination, `includes.users`, `meta`, and scripted failures (429, 5xx,
// 401, malformed bodies, dropped connections) injected before chosen requests.
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ApiTweet {
  id: string;
  text: string;
  created_at: string;
  author_id: string;
  lang: string;
  conversation_id: string;
  public_metrics: { retweet_count: number; reply_count: number; like_count: number; quote_count: number };
  note_tweet?: { text: string };
}

/** What to do for one request instead of serving the next page. */
export type Scripted =
  | { status: number; headers?: Record<string, string>; body?: string }
  | { drop: true } // destroy the socket without answering (a network error)
  | { hold: Promise<void> }; // wait before serving the page normally

export interface SeenRequest {
  path: string;
  params: URLSearchParams;
  authorization: string | undefined;
}

export interface MockX {
  baseUrl: string;
  requests: SeenRequest[];
  /** Responses for upcoming requests, by request number (1-based, counted over the server's life). */
  script: Map<number, Scripted>;
  /** Headers added to every normal page response. */
  pageHeaders: Record<string, string>;
  /** Extra top-level fields for every normal page body (e.g. a partial-error `errors` array). */
  pageExtra: Record<string, unknown>;
  close(): Promise<void>;
}

/** `n` API tweets with ids above 2^53 (so any number conversion would corrupt them). */
export function makeTweets(n: number, start = 0): ApiTweet[] {
  return Array.from({ length: n }, (_, k) => {
    const i = start + k;
    return {
      id: (1790000000000000000n + BigInt(i)).toString(),
      text: `アニメ ${i} 話がよかった @fan_${i % 3} https://t.co/x${i}`,
      created_at: new Date(Date.UTC(2024, 4, 1, 12, 0, 0) - i * 60_000).toISOString(),
      author_id: String(1000 + (i % 3)),
      lang: "ja",
      conversation_id: (1790000000000000000n + BigInt(i)).toString(),
      public_metrics: { retweet_count: i, reply_count: 0, like_count: 2 * i, quote_count: 0 },
    };
  });
}

export const TOKEN = "test-bearer-XYZ-0123456789";

export async function startMockX(tweets: ApiTweet[], token = TOKEN): Promise<MockX> {
  const requests: SeenRequest[] = [];
  const script = new Map<number, Scripted>();
  const pageHeaders: Record<string, string> = {};
  const pageExtra: Record<string, unknown> = {};

  const servePage = (url: URL, res: ServerResponse) => {
    const max = Number(url.searchParams.get("max_results") ?? "10");
    const tokenParam = url.searchParams.get("next_token");
    const offset = tokenParam === null ? 0 : Number(tokenParam.replace(/^cursor-/, ""));
    const page = tweets.slice(offset, offset + max);
    const next = offset + max < tweets.length ? `cursor-${offset + max}` : undefined;
    const users = [...new Set(page.map((t) => t.author_id))].map((id) => ({ id, username: `user${id}` }));
    const body = {
      data: page.length > 0 ? page : undefined,
      includes: { users },
      meta: {
        result_count: page.length,
        newest_id: page[0]?.id,
        oldest_id: page[page.length - 1]?.id,
        ...(next ? { next_token: next } : {}),
      },
      ...pageExtra,
    };
    res.writeHead(200, { "content-type": "application/json", ...pageHeaders });
    res.end(JSON.stringify(body));
  };

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    requests.push({ path: url.pathname, params: url.searchParams, authorization: req.headers.authorization });
    const n = requests.length;
    const step = script.get(n);
    if (step && "drop" in step) {
      req.socket.destroy();
      return;
    }
    if (step && "hold" in step) await step.hold;
    if (step && "status" in step) {
      res.writeHead(step.status, { "content-type": "application/json", ...(step.headers ?? {}) });
      res.end(step.body ?? JSON.stringify({ title: "Error", status: step.status, detail: "scripted" }));
      return;
    }
    if (!url.pathname.startsWith("/2/tweets/search/")) {
      res.writeHead(404).end();
      return;
    }
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { "content-type": "application/problem+json" });
      res.end(
        JSON.stringify({ title: "Unauthorized", type: "about:blank", status: 401, detail: "Unauthorized" }),
      );
      return;
    }
    servePage(url, res);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    script,
    pageHeaders,
    pageExtra,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}
