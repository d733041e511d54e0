import { aggregate } from '../ml/aggregate/index.ts'
import { applyDelta, assertCompatible, assertFinite, type Weights } from '../ml/weights.ts'
import type { FederationState, ProposalEntry } from './state.ts'

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
 * Round `round`'s next global model: the parent plus the aggregate of the accepted deltas,
 * in the order given (the state's merge order), by the charter's rule. The samples behind all
 * the round's proposals go with them (fedavg-share counts rejected ones as zero updates).
 * No accepted update leaves the model as it was.
 */
export function mergeRound (parent: Weights, accepted: readonly AcceptedUpdate[], state: FederationState, round: number): Weights {
  if (accepted.length === 0) return parent
  for (const update of accepted) {
    assertCompatible(parent, update.delta)
    assertFinite(update.delta)
  }
  const proposedSamples = (state.rounds.get(round)?.proposals ?? []).reduce((n, id) => n + (state.proposals.get(id)?.signed.record.numSamples ?? 0), 0)
  return applyDelta(parent, aggregate(accepted, { rule: state.charter?.record.aggregation ?? 'fedavg', proposedSamples }))
}
