import type { Weights } from '../weights.ts'
import { perCoordinate } from './coordinates.ts'
import type { Update } from './index.ts'

/**
 * Coordinate-wise trimmed mean (Yin et al. 2018): drop the ⌊β·n⌋ largest and smallest
 * values of each coordinate and average the rest. β = 0.2 trims one of five.
 */
export function trimmedMean (updates: readonly Update[], beta = 0.2): Weights {
  const trim = Math.min(Math.floor(beta * updates.length), Math.floor((updates.length - 1) / 2))
  return perCoordinate(updates, column => {
    const kept = Float64Array.from(column).sort().subarray(trim, column.length - trim)
    return kept.reduce((a, b) => a + b, 0) / kept.length
  })
}
