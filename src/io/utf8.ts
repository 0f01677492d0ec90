// Finding bytes that are not UTF-8. Node decodes them as U+FFFD without a word; readers use this to
// say which lines were damaged (or to refuse them).
import { isUtf8 } from "node:buffer";

/** 1-based numbers of the lines of `buf` (whose first line is `firstLine`) holding invalid UTF-8. */
export function invalidUtf8Lines(buf: Buffer, firstLine = 1): number[] {
  if (isUtf8(buf)) return [];
  const bad: number[] = [];
  let start = 0;
  for (let line = firstLine; start <= buf.length; line++) {
    const nl = buf.indexOf(10, start);
    const end = nl === -1 ? buf.length : nl;
    if (!isUtf8(buf.subarray(start, end))) bad.push(line);
    if (nl === -1) break;
    start = nl + 1;
  }
  return bad;
}

/** One warning line for `lines` of `file` holding invalid UTF-8, or undefined when there are none. */
export function invalidUtf8Warning(file: string, lines: readonly number[]): string | undefined {
  if (lines.length === 0) return undefined;
  return `${file}: ${lines.length} lines hold bytes that are not UTF-8, read as U+FFFD (first: line ${lines[0]})`;
}
