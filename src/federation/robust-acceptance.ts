import { z } from 'zod'

/**
 * How a peer's update lies against the voter's own update of the same round (trained from
 * the same global model on the voter's own data, as FLTrust's server does on its root set)
 * and against every earlier update the voter has seen.
 */
export const Geometry = z.object({
  /** ‖Δ_peer‖ / ‖Δ_mine‖; absent when I have no update of my own for the round. */
  normRatio: z.number().nonnegative().optional(),
  /** cos(Δ_peer, Δ_mine); absent likewise. */
  cosine: z.number().min(-1).max(1).optional(),
  /** The largest cosine with any update seen before it, of this round or an earlier one (−1: none): a re-sent update is ≈ 1. */
  earlierCosine: z.number().min(-1).max(1),
  /** The largest cosine with an update the federation merged in an earlier round (−1: none). */
  historyCosine: z.number().min(-1).max(1)
}).strict()
export type Geometry = z.infer<typeof Geometry>

/** Bounds on an update's geometry, on top of the judge's score (docs/results/robustness.md says how they were chosen). */
export const Robustness = z.object({
  /** Largest ‖Δ_peer‖ / ‖Δ_mine‖ accepted: a scaled or noise update is many times an honest one. */
  maxNormRatio: z.number().positive().default(3),
  /**
   * An update must be explained: along my own update by at least this cosine, or along an
   * update the federation merged in an earlier round by `minHistoryCosine`. Honest updates
   * are (cosine ≥ 0.07 with a peer's in round 1, ≥ 0.72 with the proposer's previous one
   * after it, on classify's dev split); noise is not (≤ 0.02 with either).
   */
  minCosine: z.number().min(-1).max(1).default(0.03),
  minHistoryCosine: z.number().min(-1).max(1).default(0.3),
  /** Largest cosine with an earlier update accepted: above it the update is a re-sent one. */
  maxEarlierCosine: z.number().min(-1).max(1).default(0.99)
}).strict()
export type Robustness = z.infer<typeof Robustness>

/** Whether the geometry passes the bounds, and what failed, for the vote's rationale. */
export function robustVerdict (g: Geometry, bounds: Robustness | undefined): { passes: boolean, summary: string } {
  if (bounds === undefined) return { passes: true, summary: '' }
  const failures: string[] = []
  if (g.earlierCosine > bounds.maxEarlierCosine) failures.push(`re-sent: cosine ${g.earlierCosine.toFixed(3)} with an earlier update`)
  if (g.normRatio !== undefined && g.normRatio > bounds.maxNormRatio) failures.push(`${g.normRatio.toFixed(2)}× my update's norm (at most ${bounds.maxNormRatio})`)
  if (g.cosine !== undefined && g.cosine < bounds.minCosine && g.historyCosine < bounds.minHistoryCosine) {
    failures.push(`unexplained: cosine ${g.cosine.toFixed(3)} with my update (at least ${bounds.minCosine}) and at most ${g.historyCosine.toFixed(3)} with any merged one (at least ${bounds.minHistoryCosine})`)
  }
  const shape = g.normRatio === undefined ? '' : `; norm ${g.normRatio.toFixed(2)}× mine, cosine ${g.cosine?.toFixed(3)}, ${g.historyCosine.toFixed(3)} with merged updates`
  return { passes: failures.length === 0, summary: shape + (failures.length === 0 ? '' : `; fails: ${failures.join(', ')}`) }
}
