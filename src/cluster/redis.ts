// The Redis behind the scoring queue: `redis://[[user]:pass@]host[:port][/db]` or `rediss://` (TLS),
// turned into ioredis options, shown only with the password masked, and checked once at start so
// an unreachable server is one clear line instead of endless reconnect noise.

import { isIP } from "node:net";
import type { RedisOptions } from "bullmq";
import { Redis } from "ioredis";

/** A parsed queue URL. */
export interface RedisTarget {
  /** Options for ioredis (and BullMQ's `connection`); they hold the password. */
  options: RedisOptions;
  /** The URL with the password replaced by `***`: the only form ever printed or written. */
  display: string;
  /** Strings that must never reach a log or a file (the password, raw and URL-encoded). */
  secrets: string[];
}

function hostOf(u: URL): string {
  return u.hostname.replace(/^\[(.*)\]$/, "$1");
}

/** Retry delay while Redis is away (a restart, a failover): 0.2 s growing to 2 s, forever. */
function reconnectDelay(times: number): number {
  return Math.min(200 * times, 2000);
}

/**
 * Parses a queue URL. The connection retries for ever once established (BullMQ needs
 * `maxRetriesPerRequest: null`), so a Redis restart pauses the clients instead of failing them.
 * @example
 * const t = parseRedisUrl("redis://:s3cret@10.0.0.5:6379/2");
 * t.display; // "redis://:***@10.0.0.5:6379/2"
 */
export function parseRedisUrl(url: string): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(
      "--queue: expected a URL like redis://host:6379/0 (the value is not shown: it may hold a password)",
    );
  }
  const secrets: string[] = [];
  if (u.password !== "") secrets.push(u.password, decodeURIComponent(u.password));
  const masked = new URL(u.href);
  if (masked.password !== "") masked.password = "***";
  const display = masked.href.replace(/\/$/, "");
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new Error(`--queue ${redact(display, secrets)}: expected redis:// or rediss://`);
  }
  const dbText = u.pathname.replace(/^\//, "");
  const db = dbText === "" ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0)
    throw new Error(`--queue ${display}: the database must be a number, got "${dbText}"`);
  const port = u.port === "" ? 6379 : Number(u.port);
  const options: RedisOptions = {
    host: hostOf(u),
    port,
    db,
    ...(u.username !== "" ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password !== "" ? { password: decodeURIComponent(u.password) } : {}),
    // TLS checks the certificate against the host name (SNI is only for names, not addresses).
    ...(u.protocol === "rediss:" ? { tls: isIP(hostOf(u)) ? {} : { servername: hostOf(u) } } : {}),
    maxRetriesPerRequest: null,
    retryStrategy: reconnectDelay,
  };
  return { options, display, secrets: [...new Set(secrets.filter((s) => s.length > 0))] };
}

/** `text` with every secret replaced by `***`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join("***");
  return out;
}

/** The message of any thrown value, redacted. */
export function redactedMessage(err: unknown, secrets: readonly string[]): string {
  return redact(err instanceof Error ? err.message : String(err), secrets);
}

/**
 * Connects once without retrying and pings: throws one line naming the (masked) URL and the cause
 * when Redis cannot be reached, refuses the password, or is older than 6.2.
 */
export async function checkRedis(target: RedisTarget, timeoutMs = 5000): Promise<void> {
  const probe = new Redis({
    ...target.options,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: timeoutMs,
  });
  let first: unknown; // the socket's error (ECONNREFUSED…) says more than the rejection ("Connection is closed")
  probe.on("error", (err) => {
    first ??= err;
  });
  try {
    await probe.connect();
    await probe.ping();
    const info = await probe.info("server");
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    if (version && (Number(version[1]) < 6 || (Number(version[1]) === 6 && Number(version[2]) < 2))) {
      throw new Error(`Redis ${version[1]}.${version[2]} is too old (6.2 or newer is needed)`);
    }
  } catch (err) {
    const cause = redactedMessage(first ?? err, target.secrets).split("\n")[0];
    throw new Error(`cannot use Redis at ${target.display}: ${cause}`);
  } finally {
    probe.disconnect();
  }
}
