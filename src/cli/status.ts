// A progress line on stderr: rewritten in place on a terminal, one whole line each in a log file
// (a bare "\r" would run the updates together there).
export function progressLine(line: string): void {
  process.stderr.write(process.stderr.isTTY ? `\r\x1b[K${line}` : `${line}\n`);
}

/** What ends a run of progress lines before the next message: a newline on a terminal only. */
export function afterProgress(): string {
  return process.stderr.isTTY ? "\n" : "";
}
