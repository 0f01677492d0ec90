// Child process of the serve load test: a server whose classifier is slow (so requests pile up),
// reporting its memory on stdin commands: "base" (after a GC), "peak" (highest RSS sampled since
// "base"), "after" (RSS and heap after a GC, once the load has drained).
import { createInterface } from "node:readline";
import { createServer } from "../../src/serve/server.js";
import { KeywordClassifier } from "./keyword-classifier.js";

/** Slow, and keeps nothing (KeywordClassifier records its calls, which would hold every text). */
class SlowClassifier extends KeywordClassifier {
  override async predict(texts: string[]) {
    await new Promise((r) => setTimeout(r, 100));
    const scored = await super.predict(texts);
    this.calls.length = 0;
    return scored;
  }
}

const maxQueueBytes = Number(process.argv[2]);
const server = await createServer(new SlowClassifier(), {
  port: 0,
  maxBatch: 32,
  maxTextLength: 40_000,
  maxBodyBytes: 1024 * 1024,
  maxQueueBytes,
  maxQueue: 1_000_000, // only the byte budget is under test here
  logError: () => {},
});
let peak = 0;
setInterval(() => {
  peak = Math.max(peak, process.memoryUsage.rss());
}, 2).unref();
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const mb = (n: number) => Math.round(n / 2 ** 20);
process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  gc();
  const m = process.memoryUsage();
  if (line === "base") peak = m.rss;
  const reply = { rss: mb(m.rss), heap: mb(m.heapUsed), peak: mb(peak) };
  process.stdout.write(`${JSON.stringify(reply)}\n`);
  if (line === "quit") break;
}
await server.close();
process.exit(0);
