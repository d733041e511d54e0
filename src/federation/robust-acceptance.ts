import type { Geometry, Robustness } from '../core/terms.ts'

/** Whether the geometry passes the bounds, and what failed, for the vote's rationale. */
export function robustVerdict (g: Geometry, bounds: Robustness | undefined): { passes: boolean, summary: string } {
  if (bounds === undefined) return { passes: true, summary: '' }
  const failures: string[] = []
  // Each bound asks that the measurement keeps within it, so a NaN, with which every comparison is false, fails it.
  if (!(g.earlierCosine <= bounds.maxEarlierCosine)) failures.push(`re-sent: cosine ${g.earlierCosine.toFixed(3)} with an earlier update`)
  if (bounds.maxRoundCosine !== undefined && g.roundCosine !== undefined && !(g.roundCosine <= bounds.maxRoundCosine)) {
    failures.push(`a cover: cosine ${g.roundCosine.toFixed(3)} with the mean of the round's earlier updates (at most ${bounds.maxRoundCosine})`)
  }
  if (g.normRatio !== undefined && !(g.normRatio <= bounds.maxNormRatio)) failures.push(`${g.normRatio.toFixed(2)}× my update's norm (at most ${bounds.maxNormRatio})`)
  if (g.cosine !== undefined && !(g.cosine >= bounds.minCosine) && !(g.historyCosine >= bounds.minHistoryCosine)) {
    failures.push(`unexplained: cosine ${g.cosine.toFixed(3)} with my update (at least ${bounds.minCosine}) and at most ${g.historyCosine.toFixed(3)} with any merged one (at least ${bounds.minHistoryCosine})`)
  }
  const shape = g.normRatio === undefined ? '' : `; norm ${g.normRatio.toFixed(2)}× mine, cosine ${g.cosine?.toFixed(3)}, ${g.historyCosine.toFixed(3)} with merged updates`
  return { passes: failures.length === 0, summary: shape + (failures.length === 0 ? '' : `; fails: ${failures.join(', ')}`) }
}
