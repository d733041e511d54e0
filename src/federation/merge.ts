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

/** A global model and the step that made it: absent for the initial model and after a round that merged nothing. */
export interface GlobalModel {
  weights: Weights
  step?: Weights
}

/** The merged update plus `momentum` times the previous round's step, if there was one (FedAvgM). */
export function withMomentum (merged: Weights, previous: Weights | undefined, momentum: number): Weights {
  return momentum > 0 && previous !== undefined ? applyDelta(merged, previous, momentum) : merged
}

/**
 * Round `round`'s next global model: the parent plus the aggregate of the accepted deltas,
 * in the order given (the state's merge order), by the charter's rule, plus the charter's
 * momentum times the parent's own step. The samples behind all the round's proposals go
 * with them (fedavg-share counts rejected ones as zero updates). No accepted update leaves
 * the model as it was, with no step to carry on.
 */
export function mergeRound (parent: GlobalModel, accepted: readonly AcceptedUpdate[], state: FederationState, round: number): GlobalModel {
  if (accepted.length === 0) return { weights: parent.weights }
  for (const update of accepted) {
    assertCompatible(parent.weights, update.delta)
    assertFinite(update.delta)
  }
  const charter = state.charter?.record
  const proposedSamples = (state.rounds.get(round)?.proposals ?? []).reduce((n, id) => n + (state.proposals.get(id)?.signed.record.numSamples ?? 0), 0)
  const step = withMomentum(aggregate(accepted, { rule: charter?.aggregation ?? 'fedavg', proposedSamples }), parent.step, charter?.momentum ?? 0)
  return { weights: applyDelta(parent.weights, step), step }
}
