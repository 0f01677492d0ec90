// A compressed sparse row (CSR) matrix of float64 — the layout scipy.sparse.csr_matrix uses — and
// the two products logistic regression needs: X·w and Xᵀ·r. The TF-IDF features of a few thousand
// long documents have tens of millions of non-zeros, so nothing here ever densifies a matrix.

export interface CsrMatrix {
  rows: number;
  cols: number;
  /** Row i's entries are indices/data[indptr[i] .. indptr[i+1]). Float64 so nnz may exceed 2³¹. */
  indptr: Float64Array;
  /** Column of each entry, ascending within a row. */
  indices: Int32Array;
  data: Float64Array;
}

/** Number of stored entries. */
export function nnz(m: CsrMatrix): number {
  return m.indptr[m.rows];
}

/** out = X·w + bias (out has one entry per row). */
export function matvec(m: CsrMatrix, w: ArrayLike<number>, bias = 0, out = new Float64Array(m.rows)) {
  const { indptr, indices, data } = m;
  for (let i = 0; i < m.rows; i++) {
    let s = bias;
    for (let k = indptr[i], end = indptr[i + 1]; k < end; k++) s += data[k] * w[indices[k]];
    out[i] = s;
  }
  return out;
}

/** out += Xᵀ·r (out has one entry per column). */
export function addTransposedMatvec(m: CsrMatrix, r: ArrayLike<number>, out: Float64Array): Float64Array {
  const { indptr, indices, data } = m;
  for (let i = 0; i < m.rows; i++) {
    const ri = r[i];
    if (ri === 0) continue;
    for (let k = indptr[i], end = indptr[i + 1]; k < end; k++) out[indices[k]] += data[k] * ri;
  }
  return out;
}

/** The matrix of the given rows, in the order given (rows may repeat). */
export function selectRows(m: CsrMatrix, rows: readonly number[]): CsrMatrix {
  const indptr = new Float64Array(rows.length + 1);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (!(r >= 0 && r < m.rows)) throw new RangeError(`row ${r} is outside 0..${m.rows - 1}`);
    indptr[i + 1] = indptr[i] + (m.indptr[r + 1] - m.indptr[r]);
  }
  const indices = new Int32Array(indptr[rows.length]);
  const data = new Float64Array(indptr[rows.length]);
  for (let i = 0; i < rows.length; i++) {
    const start = m.indptr[rows[i]];
    const end = m.indptr[rows[i] + 1];
    indices.set(m.indices.subarray(start, end), indptr[i]);
    data.set(m.data.subarray(start, end), indptr[i]);
  }
  return { rows: rows.length, cols: m.cols, indptr, indices, data };
}

/** A growable buffer of (column, value) rows from which a CsrMatrix is finished. */
export class CsrBuilder {
  private indices = new Int32Array(1024);
  private data = new Float64Array(1024);
  private readonly indptr: number[] = [0];
  private size = 0;

  constructor(readonly cols: number) {}

  /** Appends one row; `cols` must be ascending. */
  push(cols: ArrayLike<number>, values: ArrayLike<number>): void {
    const n = cols.length;
    if (this.size + n > this.indices.length) {
      const cap = Math.max(this.size + n, this.indices.length * 2);
      const indices = new Int32Array(cap);
      indices.set(this.indices.subarray(0, this.size));
      const data = new Float64Array(cap);
      data.set(this.data.subarray(0, this.size));
      this.indices = indices;
      this.data = data;
    }
    for (let k = 0; k < n; k++) {
      this.indices[this.size + k] = cols[k];
      this.data[this.size + k] = values[k];
    }
    this.size += n;
    this.indptr.push(this.size);
  }

  finish(): CsrMatrix {
    return {
      rows: this.indptr.length - 1,
      cols: this.cols,
      indptr: Float64Array.from(this.indptr),
      indices: this.indices.slice(0, this.size),
      data: this.data.slice(0, this.size),
    };
  }
}
