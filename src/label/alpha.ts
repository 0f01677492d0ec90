// Krippendorff's alpha for nominal data, with missing values (Krippendorff 2011, "Computing
// Krippendorff's Alpha-Reliability"): α = 1 − D_o / D_e from the coincidence matrix. Each unit
// (post) contributes the ordered pairs of its values, weighted 1/(m_u − 1) where m_u is how many
// coders gave it a value; units with fewer than two values are not pairable and drop out.

/** One row per unit, one entry per coder; null/undefined = that coder gave no value. */
export type ReliabilityTable = readonly (readonly (string | number | null | undefined)[])[];

export interface AlphaResult {
  /** NaN when undefined: fewer than two pairable values, or every pairable value the same. */
  alpha: number;
  /** Pairable values (n in Krippendorff's notation). */
  pairable: number;
  /** Units with at least two values. */
  units: number;
}

export function krippendorffAlphaNominal(table: ReliabilityTable): AlphaResult {
  const coincidence = new Map<string, Map<string, number>>();
  const add = (c: string, k: string, w: number) => {
    const row = coincidence.get(c) ?? new Map<string, number>();
    row.set(k, (row.get(k) ?? 0) + w);
    coincidence.set(c, row);
  };
  let units = 0;
  for (const unit of table) {
    const values = unit.filter((v) => v !== null && v !== undefined).map(String);
    const m = values.length;
    if (m < 2) continue;
    units++;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < m; j++) if (i !== j) add(values[i] as string, values[j] as string, 1 / (m - 1));
  }
  const nc = new Map<string, number>();
  let n = 0;
  let observedDisagreement = 0;
  for (const [c, row] of coincidence) {
    for (const [k, o] of row) {
      nc.set(c, (nc.get(c) ?? 0) + o);
      n += o;
      if (c !== k) observedDisagreement += o;
    }
  }
  let expected = 0;
  const totals = [...nc.values()];
  for (let a = 0; a < totals.length; a++)
    for (let b = 0; b < totals.length; b++)
      if (a !== b) expected += (totals[a] as number) * (totals[b] as number);
  const pairable = Math.round(n);
  if (n < 2 || expected === 0) return { alpha: Number.NaN, pairable, units };
  return { alpha: 1 - ((n - 1) * observedDisagreement) / expected, pairable, units };
}
