// Micro-batching: requests that arrive close together are scored in one `predict` call, which is
// much cheaper per text than one call per request (one graph run, padded batch, better use of the
// cores). A batch is sent when it holds `maxBatch` texts or `waitMs` after its first request —
// whichever comes first — and only one `predict` runs at a time: requests arriving meanwhile
// gather into the next batch, so under load batches fill up by themselves.
import type { Scored } from "../run/types.js";

export interface BatcherOptions {
  /** Most texts in one `predict` call (a single request may not exceed it). */
  maxBatch: number;
  /** How long the first request of a batch waits for company, in milliseconds. */
  waitMs: number;
}

interface Pending {
  texts: string[];
  resolve: (scored: Scored[]) => void;
  reject: (err: unknown) => void;
}

export interface BatcherStats {
  /** `predict` calls made. */
  batches: number;
  /** Texts scored. */
  texts: number;
  /** Requests answered. */
  requests: number;
  /** Largest batch sent, in texts. */
  largestBatch: number;
}

export class MicroBatcher {
  private queue: Pending[] = [];
  private queuedTexts = 0;
  private runningTexts = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  readonly stats: BatcherStats = { batches: 0, texts: 0, requests: 0, largestBatch: 0 };

  constructor(
    private readonly predict: (texts: string[]) => Promise<Scored[]>,
    private readonly options: BatcherOptions,
  ) {
    if (!(options.maxBatch >= 1)) throw new Error(`maxBatch must be at least 1, got ${options.maxBatch}`);
  }

  /** Scores `texts` (at most `maxBatch`) together with whatever else is queued. */
  submit(texts: string[]): Promise<Scored[]> {
    if (texts.length > this.options.maxBatch) {
      return Promise.reject(
        new Error(`${texts.length} texts exceed the batch limit of ${this.options.maxBatch}`),
      );
    }
    if (texts.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.queue.push({ texts, resolve, reject });
      this.queuedTexts += texts.length;
      this.schedule();
    });
  }

  /** Texts waiting or being scored: what a server bounds to keep its memory in check. */
  get pendingTexts(): number {
    return this.queuedTexts + this.runningTexts;
  }

  /** Waits until every queued request has been answered. */
  async drain(): Promise<void> {
    while (this.running || this.queue.length > 0) {
      if (!this.running) this.flush();
      await this.running;
    }
  }

  private schedule(): void {
    if (this.running) return; // the running batch flushes the queue when it ends
    if (this.queuedTexts >= this.options.maxBatch) {
      this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.options.waitMs);
    }
  }

  /** Sends up to `maxBatch` texts of whole requests, in arrival order. */
  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.running || this.queue.length === 0) return;
    const batch: Pending[] = [];
    let size = 0;
    while (this.queue.length > 0 && size + (this.queue[0] as Pending).texts.length <= this.options.maxBatch) {
      const p = this.queue.shift() as Pending;
      batch.push(p);
      size += p.texts.length;
    }
    this.queuedTexts -= size;
    this.running = this.run(batch, size).finally(() => {
      this.running = undefined;
      // Whatever arrived during the call has waited long enough: send it now.
      if (this.queue.length > 0) this.flush();
    });
  }

  private async run(batch: Pending[], size: number): Promise<void> {
    this.runningTexts = size;
    try {
      await this.score(batch, size);
    } catch (err) {
      if (batch.length === 1) {
        (batch[0] as Pending).reject(err);
        return;
      }
      // One bad text must not fail the requests that shared its call: score each request alone,
      // so only the request holding it fails.
      for (const p of batch) {
        await this.score([p], p.texts.length).catch((e: unknown) => p.reject(e));
      }
    } finally {
      this.runningTexts = 0;
    }
  }

  /** One `predict` call for whole requests; resolves each of them, or throws. */
  private async score(batch: Pending[], size: number): Promise<void> {
    this.stats.batches++;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, size);
    const scored = await this.predict(batch.flatMap((p) => p.texts));
    if (scored.length !== size)
      throw new Error(`classifier returned ${scored.length} results for ${size} texts`);
    let at = 0;
    for (const p of batch) {
      p.resolve(scored.slice(at, at + p.texts.length));
      at += p.texts.length;
    }
    this.stats.texts += size;
    this.stats.requests += batch.length;
  }
}
