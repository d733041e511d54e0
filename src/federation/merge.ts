import type { AggregationRule } from '../core/records.ts'
import { aggregate } from '../ml/aggregate/index.ts'
import { applyDelta, assertCompatible, assertFinite, type Weights } from '../ml/weights.ts'
import type { FederationState, ProposalEntry } from './state.ts'

export interface AcceptedUpdate {
  delta: Weights
  numSamples: number
  trust?: number
}

/** The samples behind every proposal of a round, accepted or rejected. */
export function proposedSamples (state: FederationState, round: number): number {
  return (state.rounds.get(round)?.proposals ?? []).reduce((n, id) => n + (state.proposals.get(id)?.signed.record.numSamples ?? 0), 0)
}

/** The mean validation gain the proposal's voters measured and signed: its trust. */
export function trustOf (entry: ProposalEntry): number {
  const scores = [...entry.votes.values()].map(v => v.signed.record.score)
  return scores.length === 0 ? 0 : scores.reduce((a, b) => a + b, 0) / scores.length
}

/**
 * The next global model: the parent plus the aggregate of the accepted deltas, in the
 * order given (the state's merge order). No accepted update leaves the model as it was.
 * `proposedSamples`: the samples behind all the round's proposals (fedavg-share counts rejected ones as zero updates).
 */
export function mergeRound (parent: Weights, accepted: readonly AcceptedUpdate[], rule: AggregationRule, proposedSamples: number): Weights {
  if (accepted.length === 0) return parent
  for (const update of accepted) {
    assertCompatible(parent, update.delta)
    assertFinite(update.delta)
  }
  return applyDelta(parent, aggregate(accepted, { rule, proposedSamples }))
}
