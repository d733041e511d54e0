import type { Weights } from '../weights.ts'
import { perCoordinate } from './coordinates.ts'
import type { Update } from './index.ts'

/** Coordinate-wise median (Yin et al. 2018): for an even count, the mean of the middle two. */
export function median (updates: readonly Update[]): Weights {
  return perCoordinate(updates, medianOf)
}

/** The median of some numbers (at least one); for an even count, the mean of the middle two. */
export function medianOf (values: ArrayLike<number>): number {
  const sorted = Float64Array.from(values).sort()
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}
