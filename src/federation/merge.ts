import { aggregate } from '../ml/aggregate/index.ts'
import { allFinite, applyDelta, assertCompatible, assertFinite, type Tensor, type Weights } from '../ml/weights.ts'
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
 * the model as it was, with no step to carry on. A value the sum would take past float32's range
 * keeps its parent's value and carries no step on (finiteModel).
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
  return finiteModel(parent.weights, { weights: applyDelta(parent.weights, step), step })
}

/**
 * The merged model with every value that is not finite put back to its parent's, and its step
 * there to 0: finite updates that each passed their judges can still sum past 3.4e38 (a huge
 * weight on a feature no judge's examples have, carried on by momentum: found red-teaming), and
 * every member adopted a model with Infinity in it. Every member and the audit derive the same
 * repair. The weights are fresh; the step may be an accepted update itself (krum), so it is
 * copied before it is changed.
 */
function finiteModel (parent: Weights, merged: Required<GlobalModel>): Required<GlobalModel> {
  const step: Weights = new Map(merged.step)
  for (const [name, t] of merged.weights) {
    const data = t.data
    if (allFinite(data)) continue
    const before = (parent.get(name) as Tensor).data
    const moved = Float32Array.from((step.get(name) as Tensor).data)
    for (let i = 0; i < data.length; i++) {
      if (Number.isFinite(data[i])) continue
      data[i] = before[i] as number
      moved[i] = 0
    }
    step.set(name, { shape: t.shape, data: moved })
  }
  return { weights: merged.weights, step }
}
