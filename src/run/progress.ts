// Progress reporting for long jobs (training, prediction): a one-line bar on a terminal, a line
// every few seconds in logs, JSON lines for machines, or nothing.

export type ProgressMode = "auto" | "bar" | "lines" | "json" | "quiet";

export interface ProgressUpdate {
  done: number;
  total: number;
  /** Extra fields shown after the bar, e.g. { loss: 0.69, lr: 1e-4 }. */
  fields?: Record<string, number | string>;
}

function fmtDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "?";
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0
    ? `${h}h${String(m).padStart(2, "0")}m`
    : m > 0
      ? `${m}m${String(sec).padStart(2, "0")}s`
      : `${sec}s`;
}

function fmtValue(v: number | string): string {
  if (typeof v === "string") return v;
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : v.toFixed(4);
}

export class Progress {
  private readonly mode: Exclude<ProgressMode, "auto">;
  private readonly start = Date.now();
  private lastPrint = 0;

  /**
   * @param baseline units already done before this clock started (a resumed run), so the ETA
   *                 only extrapolates from the work done since.
   */
  constructor(
    private readonly label: string,
    mode: ProgressMode = "auto",
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly baseline = 0,
  ) {
    this.mode = mode === "auto" ? (stream.isTTY ? "bar" : "lines") : mode;
  }

  update(u: ProgressUpdate, force = false): void {
    if (this.mode === "quiet") return;
    const now = Date.now();
    const elapsed = (now - this.start) / 1000;
    const since = u.done - this.baseline;
    const eta = since > 0 ? (elapsed / since) * (u.total - u.done) : Number.NaN;
    if (this.mode === "json") {
      process.stdout.write(
        `${JSON.stringify({ event: this.label, ...u.fields, done: u.done, total: u.total, elapsed, eta })}\n`,
      );
      return;
    }
    const interval = this.mode === "bar" ? 100 : 5000;
    if (!force && now - this.lastPrint < interval && u.done < u.total) return;
    this.lastPrint = now;
    const fields = Object.entries(u.fields ?? {})
      .map(([k, v]) => `${k} ${fmtValue(v)}`)
      .join("  ");
    const pct = u.total > 0 ? u.done / u.total : 0;
    if (this.mode === "bar") {
      const width = 24;
      const filled = Math.round(pct * width);
      const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
      this.stream.write(
        `\r\x1b[2K${this.label} ${bar} ${u.done}/${u.total}  ${fields}  ${fmtDuration(elapsed)}<${fmtDuration(eta)}`,
      );
      if (u.done >= u.total) this.stream.write("\n");
    } else {
      this.stream.write(
        `${this.label} ${u.done}/${u.total} (${(pct * 100).toFixed(0)}%)  ${fields}  elapsed ${fmtDuration(elapsed)} eta ${fmtDuration(eta)}\n`,
      );
    }
  }

  /** A message on its own line (not in json/quiet mode). */
  log(message: string): void {
    if (this.mode === "quiet") return;
    if (this.mode === "json") {
      process.stdout.write(`${JSON.stringify({ event: "log", message })}\n`);
      return;
    }
    if (this.mode === "bar") this.stream.write("\r\x1b[2K");
    this.stream.write(`${message}\n`);
  }

  /** A warning: shown even in quiet mode (quiet silences progress, not problems). */
  warn(message: string): void {
    if (this.mode === "json") {
      process.stdout.write(`${JSON.stringify({ event: "warning", message })}\n`);
      return;
    }
    if (this.mode === "bar") this.stream.write("\r\x1b[2K");
    this.stream.write(`warning: ${message}\n`);
  }
}

/**
 * A progress callback for hashing a checkpoint's files (checkpointHash's `onProgress`), in MB:
 * silent for its first second — a small or remembered checkpoint says nothing — then a bar on a
 * terminal, a line every few seconds in a log; nothing when quiet (or in json mode, whose stdout
 * carries the job's own events).
 */
export function hashProgress(
  mode: ProgressMode = "auto",
  stream: NodeJS.WriteStream = process.stderr,
  label = "hashing the base weights (MB)",
): (doneBytes: number, totalBytes: number) => void {
  if (mode === "quiet" || mode === "json") return () => {};
  const start = Date.now();
  let shown: Progress | undefined;
  return (done, total) => {
    if (!shown && Date.now() - start < 1000) return;
    // Whole MB, reaching the total only with the last byte (the bar ends its line there).
    const totalMb = Math.ceil(total / 1e6);
    const doneMb = done >= total ? totalMb : Math.min(Math.floor(done / 1e6), totalMb - 1);
    shown ??= new Progress(label, mode, stream, doneMb);
    shown.update({ done: doneMb, total: totalMb });
  };
}
