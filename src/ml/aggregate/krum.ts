import type { Weights } from '../weights.ts'
import { fedavg } from './fedavg.ts'
import { squaredDistance } from './coordinates.ts'
import type { Update } from './index.ts'

/**
 * Krum and multi-Krum (Blanchard et al. 2017). Each update is scored by the sum of its
 * squared distances to its n − f − 2 nearest others; Krum keeps the best one, multi-Krum
 * the best m and averages them (FedAvg-weighted). `f` is the number of Byzantine updates
 * tolerated; with too few updates for the rule, the neighbour count is clamped to ≥ 1.
 */
export function multiKrum (updates: readonly Update[], options: { byzantine: number, keep: number }): Weights {
  const n = updates.length
  const neighbours = Math.max(1, n - options.byzantine - 2)
  const distances = updates.map((a, i) => updates.map((b, j) => (i === j ? 0 : squaredDistance(a.delta, b.delta))))
  const scores = distances.map((row, i) => row.filter((_, j) => j !== i).sort((a, b) => a - b).slice(0, neighbours).reduce((s, d) => s + d, 0))
  const chosen = scores.map((score, i) => ({ score, i })).sort((a, b) => a.score - b.score || a.i - b.i).slice(0, Math.max(1, Math.min(options.keep, n)))
  return fedavg(chosen.sort((a, b) => a.i - b.i).map(c => updates[c.i] as Update))
}

export function krum (updates: readonly Update[], byzantine: number): Weights {
  return multiKrum(updates, { byzantine, keep: 1 })
}
