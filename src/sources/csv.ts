// CSV for `tweets import`: the dataset loader's RFC 4180 reader (quoted fields with "" escapes,
// newlines inside quotes, CRLF/LF/CR line ends), but failing on the first bad record, since an
// import is all or nothing. Each record carries the line number it starts on, for error messages.
import { splitDelimited } from "../data/readers.js";

export interface CsvRecord {
  fields: string[];
  /** 1-based line where the record starts. */
  line: number;
}

/** Parse CSV text (comma or another one-character delimiter such as tab). Blank lines are skipped. */
export function parseCsv(text: string, file: string, delimiter = ","): CsvRecord[] {
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  return splitDelimited(s, delimiter).map((r) => {
    if ("reason" in r) throw new Error(`${file}:${r.line}: ${r.reason}`);
    return r;
  });
}
