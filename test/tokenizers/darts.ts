// Test helper: builds a SentencePiece `precompiled_charsmap` blob (darts-clone double array +
// NUL-terminated replacement strings) from a few rules, so the normalizer can be tested without a
// real nmt_nfkc model. Only for small rule sets (offsets must stay below 2^21).

/** rules: source string → replacement string. */
export function buildCharsmap(rules: Record<string, string>): Uint8Array {
  const enc = new TextEncoder();
  // replacement strings, each followed by NUL; value = offset of the string
  const strings: number[] = [];
  const entries = Object.entries(rules).map(([from, to]) => {
    const offset = strings.length;
    strings.push(...enc.encode(to), 0);
    return { key: enc.encode(from), value: offset };
  });

  // plain trie first
  interface Node {
    children: Map<number, Node>;
    value?: number;
  }
  const root: Node = { children: new Map() };
  for (const { key, value } of entries) {
    let n = root;
    for (const b of key) {
      let c = n.children.get(b);
      if (!c) {
        c = { children: new Map() };
        n.children.set(b, c);
      }
      n = c;
    }
    n.value = value;
  }

  // Double array: unit of node p holds its label, has_leaf and offset = p ^ base, children at base ^ label;
  // the value of a node with a terminal sits at base ^ 0 = base, with bit 31 set.
  const units: number[] = [0];
  const used: boolean[] = [true];
  const isFree = (i: number): boolean => !used[i];
  // two nodes may not share a base, or a walk could step into the other node's children
  const usedBase = new Set<number>();
  const place = (p: number, node: Node, label: number): void => {
    const labels = [...node.children.keys()];
    if (node.value !== undefined) labels.push(0);
    let base = 1;
    while (usedBase.has(base) || !labels.every((l) => isFree(base ^ l)) || (base ^ p) >= 1 << 21) base++;
    usedBase.add(base);
    for (const l of labels) used[base ^ l] = true;
    const hasLeaf = node.value !== undefined ? 1 << 8 : 0;
    units[p] = (((p ^ base) << 10) | hasLeaf | label) >>> 0;
    if (node.value !== undefined) units[base] = (node.value | 0x80000000) >>> 0;
    for (const [l, child] of node.children) place(base ^ l, child, l);
  };
  place(0, root, 0);
  // darts-clone allocates whole blocks of 256 units, so a walk XOR-ing any byte stays inside
  const n = Math.ceil(units.length / 256) * 256;
  const blob = new Uint8Array(4 + 4 * n + strings.length);
  const view = new DataView(blob.buffer);
  view.setUint32(0, 4 * n, true);
  for (let i = 0; i < n; i++) view.setUint32(4 + 4 * i, units[i] ?? 0, true);
  blob.set(strings, 4 + 4 * n);
  return blob;
}
