// The terminal view of an explanation: the post with its spans coloured by the sign (red raises the
// label's score, blue lowers it) and size of their attribution, or, without colour, the post followed
// by its strongest spans with their values (so the view never relies on colour alone).
import type { Explanation } from "./explain.js";

const RESET = "\x1b[0m";

/** 256-colour background for a share s ∈ [-1, 1] of the largest attribution. */
function background(s: number): string {
  const level = Math.min(4, Math.round(Math.abs(s) * 4));
  if (level === 0) return "";
  const red = [0, 224, 217, 203, 196][level];
  const blue = [0, 153, 111, 69, 27][level];
  return `\x1b[48;5;${s > 0 ? red : blue}m${level >= 3 ? "\x1b[97m" : "\x1b[30m"}`;
}

function header(e: Explanation): string {
  const err = (100 * e.completenessError).toFixed(2);
  const cut = e.truncated
    ? `; only the first ${e.explainedChars} of ${e.text.length} characters were explained`
    : "";
  return `${e.label}  p=${e.prob.toFixed(3)}  logit ${e.logit.toFixed(3)} (baseline ${e.baselineLogit.toFixed(3)}, completeness error ${err} %${cut})`;
}

/** The explanation as text for a terminal; `colour` when stdout is a TTY. */
export function renderExplanation(e: Explanation, opts: { colour: boolean; top?: number }): string {
  const max = Math.max(1e-12, ...e.tokens.map((t) => Math.abs(t.attribution)));
  const lines = [header(e)];
  if (opts.colour) {
    let at = 0;
    let body = "";
    for (const t of e.tokens) {
      body += e.text.slice(at, t.start);
      const bg = background(t.attribution / max);
      body += bg ? `${bg}${t.text}${RESET}` : t.text;
      at = t.end;
    }
    body += e.text.slice(at);
    lines.push(`  ${body}`);
  } else lines.push(`  ${e.text}`);
  const top = [...e.tokens]
    .sort((a, b) => Math.abs(b.attribution) - Math.abs(a.attribution))
    .slice(0, opts.top ?? 5)
    .filter((t) => t.attribution !== 0);
  for (const t of top) {
    const v = `${t.attribution >= 0 ? "+" : "−"}${Math.abs(t.attribution).toFixed(3)}`;
    lines.push(`  ${v.padStart(8)}  ${JSON.stringify(t.text)}  [${t.start}, ${t.end})`);
  }
  return lines.join("\n");
}
