// Errors about input data. Every message names the file, and the line and field when known, so a
// user can open the file at the right place: `data.jsonl:7: invalid JSON: ...`.

export interface DataErrorInfo {
  file: string;
  /** 1-based line number where the bad record starts, when known. */
  line?: number;
  /** The field (column) at fault, when known. */
  field?: string;
  /** What is wrong, without the location. */
  reason: string;
}

export class DataError extends Error {
  readonly file: string;
  readonly line: number | undefined;
  readonly field: string | undefined;
  readonly reason: string;

  constructor(info: DataErrorInfo) {
    super(formatLocation(info) + info.reason);
    this.name = "DataError";
    this.file = info.file;
    this.line = info.line;
    this.field = info.field;
    this.reason = info.reason;
  }
}

function formatLocation(info: DataErrorInfo): string {
  let where = info.file;
  if (info.line !== undefined) where += `:${info.line}`;
  where += ": ";
  if (info.field !== undefined) where += `field ${JSON.stringify(info.field)}: `;
  return where;
}
