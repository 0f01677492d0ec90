// SentencePiece's precompiled normalization rules (`NormalizerSpec.precompiled_charsmap`, also the
// `Precompiled` normalizer of tokenizer.json). The blob is
//   <uint32 LE: trie size in bytes><double-array trie (darts-clone units)><normalized strings, NUL-terminated>
// The trie maps a UTF-8 byte string (the source characters) to the offset of its replacement
// in the strings part. Normalization takes, at each position, the longest rule that matches.

/** Read-only view of a darts-clone double array: 32-bit units, little-endian. */
export class DoubleArray {
  constructor(private readonly units: Uint32Array) {}

  /**
   * All keys that are prefixes of bytes[start..end): returns [length, value] pairs, shortest first.
   * A unit packs: label (bits 0-7, bit 31 set on leaf units), has_leaf (bit 8),
   * offset to the children (bits 10-31, shifted left by 8 more when bit 9 is set).
   */
  commonPrefixSearch(bytes: Uint8Array, start: number, end: number): Array<[number, number]> {
    const units = this.units;
    const out: Array<[number, number]> = [];
    let pos = offsetOf(units[0]);
    for (let i = start; i < end; i++) {
      const b = bytes[i];
      pos ^= b;
      if (pos >= units.length) return out;
      const unit = units[pos];
      if ((unit & 0x800000ff) >>> 0 !== b) return out;
      pos ^= offsetOf(unit);
      if (pos >= units.length) return out;
      if ((unit >>> 8) & 1) out.push([i - start + 1, units[pos] & 0x7fffffff]);
    }
    return out;
  }
}

function offsetOf(unit: number): number {
  return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
}

/** The decoded charsmap: longest-match normalization of one character (or rule) at a time. */
export class PrecompiledCharsmap {
  private readonly trie: DoubleArray;
  private readonly normalized: Uint8Array;
  private readonly cache = new Map<number, string>();
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true }); // keep a U+FEFF that is text

  constructor(blob: Uint8Array, file = "<charsmap>") {
    if (blob.length <= 4)
      throw new Error(`${file}: precompiled_charsmap is too short (${blob.length} bytes)`);
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const trieSize = view.getUint32(0, true);
    if (trieSize >= blob.length || trieSize % 4 !== 0) {
      throw new Error(`${file}: precompiled_charsmap trie size ${trieSize} does not fit the blob`);
    }
    // copy: the units must be 4-byte aligned for a Uint32Array
    const units = new Uint32Array(trieSize / 4);
    for (let i = 0; i < units.length; i++) units[i] = view.getUint32(4 + 4 * i, true);
    this.trie = new DoubleArray(units);
    this.normalized = blob.subarray(4 + trieSize);
  }

  /**
   * The longest rule matching bytes[start..end): [consumed bytes, replacement], or undefined
   * when no rule applies (the character is then kept as is).
   */
  match(bytes: Uint8Array, start: number, end: number): [number, string] | undefined {
    const hits = this.trie.commonPrefixSearch(bytes, start, end);
    if (hits.length === 0) return undefined;
    let best = hits[0];
    for (const h of hits) if (h[0] > best[0]) best = h;
    return [best[0], this.replacement(best[1])];
  }

  /** The replacement of the shortest rule that is a prefix of bytes[start..end) (HF's `transform`). */
  shortest(bytes: Uint8Array, start: number, end: number): string | undefined {
    const hits = this.trie.commonPrefixSearch(bytes, start, end);
    return hits.length > 0 ? this.replacement(hits[0][1]) : undefined;
  }

  private replacement(offset: number): string {
    let s = this.cache.get(offset);
    if (s === undefined) {
      let e = offset;
      while (e < this.normalized.length && this.normalized[e] !== 0) e++;
      s = this.decoder.decode(this.normalized.subarray(offset, e));
      this.cache.set(offset, s);
    }
    return s;
  }
}
