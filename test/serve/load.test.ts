// serve under a flood on loopback: 200 concurrent ~660 KB requests against a slow classifier. With a
// byte budget (--max-queue-bytes 8 MiB) the server answers the excess 503 and its RSS peak stays a
// fraction of what the same flood costs without one; the memory is given back when it drains.
// Both servers run side by side in one test: only ratios are compared, never times.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const SERVER = fileURLToPath(new URL("./load-server.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

interface Memory {
  rss: number;
  heap: number;
  peak: number;
}

async function flood(budgetBytes: number) {
  const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", SERVER, String(budgetBytes)], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await lines.next()).value as string);
  const ask = async (cmd: string): Promise<Memory> => {
    child.stdin.write(`${cmd}\n`);
    return next();
  };
  const { url } = (await next()) as { url: string };
  const post = (texts: string[]) =>
    fetch(`${url}/v1/classify`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ texts }),
    }).then(
      async (r) => {
        await r.arrayBuffer();
        return { status: r.status, retryAfter: r.headers.get("retry-after") };
      },
      (err: Error & { cause?: { code?: string } }) => ({
        status: `network error ${err.cause?.code ?? err.message}`,
        retryAfter: null,
      }),
    );
  await post(["warm-up"]);
  const base = await ask("base");
  const text = "あいうえお".repeat(4000); // 20,000 characters, 60 KB
  const replies = await Promise.all(Array.from({ length: 200 }, () => post(Array(11).fill(text))));
  const peak = await ask("peak");
  const after = await ask("quit");
  return { base, peak, after, replies };
}

test("a flood is bounded by --max-queue-bytes: 503 + Retry-After beyond it, RSS peak held, memory returned", async () => {
  const bounded = await flood(8 * 2 ** 20);
  const unbounded = await flood(2 ** 40);
  const grew = (r: typeof bounded) => r.peak.peak - r.base.rss;
  const statuses = (r: typeof bounded) => {
    const count: Record<string, number> = {};
    for (const { status } of r.replies) count[status] = (count[status] ?? 0) + 1;
    return count;
  };
  const summary = {
    boundedMB: grew(bounded),
    unboundedMB: grew(unbounded),
    boundedStatuses: statuses(bounded),
    unboundedStatuses: statuses(unbounded),
  };

  assert.ok(
    bounded.replies.every((r) => r.status === 200 || r.status === 503),
    JSON.stringify(summary),
  );
  const busy = bounded.replies.filter((r) => r.status === 503);
  assert.ok(busy.length > 0 && busy.length < 200, `${busy.length} of 200 answered 503`);
  assert.ok(busy.every((r) => r.retryAfter === "1"));
  assert.ok(
    unbounded.replies.every((r) => r.status === 200),
    `without a budget, every request is queued: ${JSON.stringify(summary)}`,
  );
  // The bounded server's RSS grows by well under half of what the same flood costs unbounded.
  assert.ok(grew(bounded) < 0.5 * grew(unbounded), JSON.stringify(summary));
  // Drained: the heap is back near where it started (RSS may keep freed pages; the heap may not).
  assert.ok(bounded.after.heap - bounded.base.heap < 16, JSON.stringify(bounded));
});
