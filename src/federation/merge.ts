import type { AggregationRule } from '../core/records.ts'
import { aggregate } from '../ml/aggregate/index.ts'
import { applyDelta, assertCompatible, assertFinite, type Weights } from '../ml/weights.ts'

export interface AcceptedUpdate {
  delta: Weights
  numSamples: number
}

/**
 * The next global model: the parent plus the aggregate of the accepted deltas, in the
 * order given (the state's merge order). No accepted update leaves the model as it was.
 */
export function mergeRound (parent: Weights, accepted: readonly AcceptedUpdate[], rule: AggregationRule): Weights {
  if (accepted.length === 0) return parent
  for (const update of accepted) {
    assertCompatible(parent, update.delta)
    assertFinite(update.delta)
  }
  return applyDelta(parent, aggregate(accepted, { rule }))
}
