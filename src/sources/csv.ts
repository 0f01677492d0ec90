// A small RFC 4180 CSV reader: quoted fields with "" escapes, newlines inside quotes, CRLF or LF,
// a leading BOM. Each record carries the line number it starts on, for error messages.

export interface CsvRecord {
  fields: string[];
  /** 1-based line where the record starts. */
  line: number;
}

/** Parse CSV text (comma or another one-character delimiter such as tab). Blank lines are skipped. */
export function parseCsv(text: string, file: string, delimiter = ","): CsvRecord[] {
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = "";
  let line = 1;
  let recordLine = 1;
  let i = 0;
  let quotedField = false;

  const endField = () => {
    fields.push(field);
    field = "";
    quotedField = false;
  };
  const endRecord = () => {
    endField();
    // A record that is one empty unquoted field is a blank line.
    if (!(fields.length === 1 && fields[0] === "")) records.push({ fields, line: recordLine });
    fields = [];
  };

  while (i < s.length) {
    const c = s[i] as string;
    if (c === '"' && field === "" && !quotedField) {
      // Quoted field: read to the closing quote.
      quotedField = true;
      const startLine = line;
      i++;
      for (;;) {
        if (i >= s.length) throw new Error(`${file}:${startLine}: unterminated quoted field`);
        const q = s[i] as string;
        if (q === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (q === "\n") line++;
        field += q;
        i++;
      }
      const after = s[i];
      if (after !== undefined && after !== delimiter && after !== "\n" && after !== "\r") {
        throw new Error(`${file}:${line}: unexpected character after a closing quote`);
      }
      continue;
    }
    if (c === delimiter) {
      endField();
      i++;
    } else if (c === "\r" || c === "\n") {
      endRecord();
      i += c === "\r" && s[i + 1] === "\n" ? 2 : 1;
      line++;
      recordLine = line;
    } else {
      field += c;
      i++;
    }
  }
  if (field !== "" || fields.length > 0 || quotedField) endRecord();
  return records;
}
