import type { Tensor, Weights } from '../weights.ts'
import type { Update } from './index.ts'

/**
 * Applies `combine` to the column of values each coordinate takes across the updates
 * (in the order given) and returns the merged delta. Shared by the coordinate-wise rules.
 */
export function perCoordinate (updates: readonly Update[], combine: (column: Float64Array) => number): Weights {
  const first = updates[0] as Update
  const out: Weights = new Map()
  const column = new Float64Array(updates.length)
  for (const [name, t] of first.delta) {
    const data = new Float32Array(t.data.length)
    const sources = updates.map(u => (u.delta.get(name) as Tensor).data)
    for (let i = 0; i < data.length; i++) {
      sources.forEach((s, k) => { column[k] = s[i] as number })
      data[i] = combine(column)
    }
    out.set(name, { shape: [...t.shape], data })
  }
  return out
}

/** Squared Euclidean distance between two deltas over all their tensors. */
export function squaredDistance (a: Weights, b: Weights): number {
  let sum = 0
  for (const [name, t] of a) {
    const other = (b.get(name) as Tensor).data
    for (let i = 0; i < t.data.length; i++) {
      const d = (t.data[i] as number) - (other[i] as number)
      sum += d * d
    }
  }
  return sum
}
