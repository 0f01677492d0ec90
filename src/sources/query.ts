// Building X API v2 search queries: presets, language and retweet operators.

/** Named starting points for `--preset`. Extend them with `--query` (the two are ANDed). */
export const QUERY_PRESETS: Readonly<Record<string, string>> = {
  // Japanese posts about anime: the word, its hashtag, and common phrases ("this season's anime",
  // "new anime", "anime adaptation"). lang:ja and -is:retweet are added by buildSearchQuery.
  anime: "(アニメ OR #アニメ OR 今期アニメ OR 新作アニメ OR アニメ化)",
};

export interface QueryOptions {
  /** Free query text in X search syntax. */
  query?: string;
  /** Name of a preset in QUERY_PRESETS. */
  preset?: string;
  /** Language operator to add (default "ja"); "" or "any" adds none. */
  lang?: string;
  /** Add `-is:retweet` (default true). */
  excludeRetweets?: boolean;
}

/** Wrap a clause in parentheses when it has a top-level OR, so ANDing more operators keeps its meaning. */
function group(q: string): string {
  const t = q.trim();
  if (t.startsWith("(") && t.endsWith(")")) return t;
  // X evaluates AND (space) before OR, so "a OR b lang:ja" would mean "a OR (b lang:ja)".
  return /(^|\s)OR(\s|$)/.test(t) ? `(${t})` : t;
}

/** The final search query: preset AND user query, plus `lang:<code>` and `-is:retweet` unless already present. */
export function buildSearchQuery(opts: QueryOptions): string {
  const parts: string[] = [];
  if (opts.preset !== undefined) {
    const preset = QUERY_PRESETS[opts.preset];
    if (preset === undefined) {
      throw new Error(
        `unknown query preset "${opts.preset}" (known: ${Object.keys(QUERY_PRESETS).join(", ")})`,
      );
    }
    parts.push(preset);
  }
  const user = opts.query?.trim();
  if (user) parts.push(parts.length > 0 ? group(user) : user);
  if (parts.length === 0) throw new Error("no search query: give --query and/or --preset");

  let q = parts.length > 1 ? parts.join(" ") : group(parts[0] as string);
  const lang = opts.lang ?? "ja";
  if (lang !== "" && lang !== "any" && !/(^|[\s(-])lang:/.test(q)) q += ` lang:${lang}`;
  if ((opts.excludeRetweets ?? true) && !/is:retweet\b/.test(q)) q += " -is:retweet";
  return q;
}
