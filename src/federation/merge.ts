import type { AggregationRule } from '../core/records.ts'
import { aggregate } from '../ml/aggregate/index.ts'
import { applyDelta, assertCompatible, assertFinite, type Weights } from '../ml/weights.ts'
import type { ProposalEntry } from './state.ts'

export interface AcceptedUpdate {
  delta: Weights
  numSamples: number
  trust?: number
}

/** The mean validation gain the proposal's voters measured and signed: its trust. */
export function trustOf (entry: ProposalEntry): number {
  const scores = [...entry.votes.values()].map(v => v.signed.record.score)
  return scores.length === 0 ? 0 : scores.reduce((a, b) => a + b, 0) / scores.length
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
