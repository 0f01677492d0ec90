// Text formats shared by the dataset commands: numbers printed exactly as the Python prototype
// printed them, and simple tables rendered as aligned text, Markdown or CSV.

/**
 * `x` with `digits` decimals, rounded like Python's `f"{x:.2f}"`: from the exact binary value,
 * ties to even. (JavaScript's toFixed breaks exact ties upwards, e.g. 0.125 → "0.13" vs "0.12".)
 */
export function pyFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Math.abs(x) >= 1e21 || digits > 60) return x.toFixed(Math.min(digits, 100));
  const negative = x < 0 || Object.is(x, -0);
  // toFixed(100) prints the exact binary value (doubles here have far fewer than 100 decimals).
  const exact = Math.abs(x).toFixed(100);
  const [intPart, frac] = exact.split(".") as [string, string];
  const kept = frac.slice(0, digits);
  const rest = frac.slice(digits);
  let digitsStr = intPart + kept;
  const first = rest[0] ?? "0";
  const tail = rest.slice(1);
  const last = Number(digitsStr[digitsStr.length - 1] ?? "0");
  const roundUp = first > "5" || (first === "5" && (/[1-9]/.test(tail) || last % 2 === 1));
  if (roundUp) digitsStr = incrementDecimalString(digitsStr);
  const int = digitsStr.slice(0, digitsStr.length - digits) || "0";
  const out = digits > 0 ? `${int}.${digitsStr.slice(digitsStr.length - digits)}` : int;
  return negative && /[1-9]/.test(out) ? `-${out}` : out;
}

function incrementDecimalString(s: string): string {
  const chars = s.split("");
  for (let i = chars.length - 1; i >= 0; i--) {
    if (chars[i] === "9") chars[i] = "0";
    else {
      chars[i] = String(Number(chars[i]) + 1);
      return chars.join("");
    }
  }
  return `1${chars.join("")}`;
}

/** A percentage with two decimals, as the prototype printed it (`63.39`). */
export function percent(part: number, whole: number): string {
  return pyFixed(whole === 0 ? 0 : (part / whole) * 100, 2);
}

/** Python's repr() of a str (the prototype printed dict keys and label names with it). */
export function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = "";
  for (const ch of s) {
    if (ch === "\\") out += "\\\\";
    else if (ch === quote) out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else out += ch;
  }
  return quote + out + quote;
}

/** The prototype's per-label line: `'obscene': yes..63.39%(1193), no..36.61%(689)`. */
export function formatRateLine(name: string, yes: number, no: number): string {
  const total = yes + no;
  return `${pyRepr(name)}: yes..${percent(yes, total)}%(${yes}), no..${percent(no, total)}%(${no})`;
}

/** The prototype's histogram line: `{'0': 1965, '1': 1468, ...}`. */
export function formatHistogram(counts: readonly number[]): string {
  return `{${counts.map((n, k) => `${pyRepr(String(k))}: ${n}`).join(", ")}}`;
}

export type Cell = string | number;

export interface Table {
  title: string;
  headers: string[];
  rows: Cell[][];
}

function cellText(c: Cell): string {
  return typeof c === "number" ? String(c) : c;
}

/** Display width: East Asian wide characters take two terminal columns. */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    const wide =
      (cp >= 0x1100 && cp <= 0x115f) ||
      (cp >= 0x2e80 && cp <= 0xa4cf) ||
      (cp >= 0xac00 && cp <= 0xd7a3) ||
      (cp >= 0xf900 && cp <= 0xfaff) ||
      (cp >= 0xfe30 && cp <= 0xfe4f) ||
      (cp >= 0xff00 && cp <= 0xff60) ||
      (cp >= 0xffe0 && cp <= 0xffe6) ||
      (cp >= 0x1f300 && cp <= 0x1faff) ||
      (cp >= 0x20000 && cp <= 0x3fffd);
    w += wide ? 2 : 1;
  }
  return w;
}

/** Aligned plain-text table; numbers right-aligned. */
export function renderTextTable(table: Table): string {
  const cells = [table.headers, ...table.rows.map((r) => r.map(cellText))];
  const widths = table.headers.map((_, j) => Math.max(...cells.map((r) => displayWidth(r[j] ?? ""))));
  const numeric = table.headers.map(
    (_, j) =>
      table.rows.length > 0 &&
      table.rows.every((r) => typeof r[j] === "number" || /^(-?[\d.]+%?)?$/.test(String(r[j] ?? ""))),
  );
  const line = (r: string[]) =>
    r
      .map((c, j) => {
        const pad = " ".repeat((widths[j] ?? 0) - displayWidth(c));
        return numeric[j] ? pad + c : c + pad;
      })
      .join("  ")
      .trimEnd();
  return [line(cells[0] as string[]), ...cells.slice(1).map(line)].join("\n");
}

export function renderMarkdownTable(table: Table): string {
  const esc = (c: Cell) => cellText(c).replace(/\|/g, "\\|").replace(/\n/g, " ");
  const numeric = table.headers.map(
    (_, j) => table.rows.length > 0 && table.rows.every((r) => typeof r[j] === "number"),
  );
  return [
    `| ${table.headers.map(esc).join(" | ")} |`,
    `|${table.headers.map((_, j) => (numeric[j] ? " ---: " : " --- ")).join("|")}|`,
    ...table.rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

/** RFC 4180 CSV (CRLF-free; fields quoted when they hold a comma, quote or newline). */
export function renderCsvTable(table: Table): string {
  const esc = (c: Cell) => {
    const s = cellText(c);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return `${[table.headers, ...table.rows].map((r) => r.map(esc).join(",")).join("\n")}\n`;
}
