// A deterministic Classifier for API tests: a category's probability is high when the text contains
// one of its keywords. It records every predict call so tests can see how requests were batched.
import type { Classifier, Scored } from "../../src/run/types.js";

export const KEYWORDS: Record<string, string[]> = {
  obscene: ["エロ", "卑猥"],
  discriminatory: ["差別", "〇〇人"],
  violent: ["殺す", "殴る"],
  corporate: ["会社", "企業"],
};

export class KeywordClassifier implements Classifier {
  readonly labels = Object.keys(KEYWORDS);
  readonly thresholds = [0.5, 0.4, 0.5, 0.6];
  /** The texts of each predict call, in call order. */
  readonly calls: string[][] = [];
  closed = false;
  /** When set, predict waits for this promise first (lets tests hold a batch in flight). */
  gate: Promise<void> | undefined;
  /** When set, predict throws this error. */
  failWith: Error | undefined;
  /** When set, predict throws (like onnxruntime on a bad input) for any call holding this text. */
  poison: string | undefined;

  async predict(texts: string[]): Promise<Scored[]> {
    this.calls.push([...texts]);
    if (this.gate) await this.gate;
    if (this.failWith) throw this.failWith;
    if (this.poison !== undefined && texts.includes(this.poison)) {
      throw new Error(
        "Non-zero status code returned while running Gather node. /onnxruntime_src/gather.cc:123",
      );
    }
    return texts.map((text) => {
      const probs = this.labels.map((label) => {
        const hits = (KEYWORDS[label] as string[]).filter((k) => text.includes(k)).length;
        // Two keywords: 0.95, one: 0.85, none: a small length-dependent value below every threshold.
        return hits >= 2 ? 0.95 : hits === 1 ? 0.85 : Math.min(0.3, 0.05 + text.length / 1000);
      });
      return { probs, decisions: probs.map((p, j) => p >= (this.thresholds[j] as number)) };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
