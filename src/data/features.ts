import { tokenize } from './tokenizer.ts'

/**
 * Text → features by the hashing trick: lowercase word unigrams and bigrams hashed into
 * `dims` buckets, sublinear term frequency (1 + log tf), L2-normalised. No vocabulary is
 * built from anyone's data, so every participant featurises alike without sharing text.
 */
export interface SparseVector {
  indices: Int32Array
  values: Float32Array
}

export function hashFeatures (text: string, dims: number): SparseVector {
  const tokens = tokenize(text)
  const counts = new Map<number, number>()
  const add = (term: string): void => {
    const bucket = fnv1a(term) % dims
    counts.set(bucket, (counts.get(bucket) ?? 0) + 1)
  }
  tokens.forEach((t, i) => {
    add(t)
    if (i > 0) add(`${tokens[i - 1] as string} ${t}`)
  })
  const indices = Int32Array.from([...counts.keys()].sort((a, b) => a - b))
  const values = Float32Array.from(indices, i => 1 + Math.log(counts.get(i) as number))
  const norm = Math.hypot(...values) || 1
  for (let i = 0; i < values.length; i++) values[i] = (values[i] as number) / norm
  return { indices, values }
}

/** Dense rows for a batch, ready for a tensor. */
export function densify (rows: readonly SparseVector[], dims: number): Float32Array {
  const out = new Float32Array(rows.length * dims)
  rows.forEach((row, r) => {
    row.indices.forEach((col, k) => { out[r * dims + col] = row.values[k] as number })
  })
  return out
}

/** 32-bit FNV-1a: the hash behind every hashed feature. */
export function fnv1a (text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}
