import { ConclaveError } from '../../core/errors.ts'
import type { BlockId } from '../../core/records.ts'
import type { Judge } from '../../ml/task.ts'
import { applyDelta, assertFinite, shiftedModel, type Weights } from '../../ml/weights.ts'
import type { HeldModel, StepOptions } from '../context.ts'
import { robustVerdict, type Robustness } from '../robust-acceptance.ts'
import type { ProposalEntry } from '../state.ts'
import { fetchProposed } from './fetch-update.ts'
import { measureGeometry, type GeometryContext } from './geometry.ts'

export type MarginalContext = GeometryContext

export interface MarginalParams {
  entry: ProposalEntry
  delta: Weights
  global: HeldModel
  /** Each update's share, as the charter's terms scale it. */
  scale: number
  judge: Judge<unknown>
  robustness: Robustness | undefined
}

/**
 * My judge's scores of the global model with the round's combined update applied, with and
 * without `entry`'s update: the combination is every update of the round's proposals (as far
 * as they are in) that I can use and my geometry bounds admit, my own proposal's included.
 * Updates the bounds refuse (scaled, noise, re-sent) stay out, so they cannot make every
 * other update look good or bad against them.
 */
export async function marginalScores (ctx: MarginalContext, params: MarginalParams, options: StepOptions = {}): Promise<{ combined: number, without: number }> {
  const { entry, delta, global, scale, judge } = params
  const round = await admitted(ctx, params, options)
  const others = [...round.updates].filter(([block]) => block !== entry.block).map(([, d]) => d)
  const score = async (updates: readonly Weights[]): Promise<number> =>
    await ctx.timer.time('evaluate', () => judge.score(updates.reduce((w, d) => shiftedModel(w, d, scale), global.weights), ctx.held.shard.val))
  round.combined ??= await score([...round.updates.values()])
  const combined = round.updates.has(entry.block) ? round.combined : await score([...others, delta])
  const without = await score(others)
  return { combined, without }
}

/** The round's updates I admit to the combination, gathered once per global model and number of proposals. */
async function admitted (ctx: MarginalContext, { entry, global, robustness }: MarginalParams, options: StepOptions): Promise<{ updates: Map<BlockId, Weights>, combined?: number }> {
  const { held, state } = ctx
  const round = entry.signed.record.round
  const ids = state.rounds.get(round)?.proposals ?? []
  const known = held.combinations.get(round)
  if (known !== undefined && known.model === global.ref.cid && known.proposals === ids.length) return known
  const updates = new Map<BlockId, Weights>()
  for (const id of ids) {
    const peer = state.proposals.get(id)
    if (peer === undefined) continue
    const delta = await usable(ctx, peer, global, options)
    if (delta === undefined) continue
    // My own proposal needs no bounds; a peer's must pass them, as my vote on it would ask.
    const mine = peer.signed.issuer === ctx.identity.did
    if (!mine && robustness !== undefined && !robustVerdict(await measureGeometry(ctx, { entry: peer, delta }, options), robustness).passes) continue
    updates.set(id, delta)
  }
  const combination = { model: global.ref.cid, proposals: ids.length, updates }
  held.combinations.set(round, combination)
  return combination
}

/** A proposal's Δw if it can be applied to the global model, else undefined (it is judged unusable on its own). */
async function usable (ctx: MarginalContext, entry: ProposalEntry, global: HeldModel, options: StepOptions): Promise<Weights | undefined> {
  try {
    const delta = await fetchProposed(ctx, entry, options)
    assertFinite(applyDelta(global.weights, delta))
    ctx.held.deltas.set(entry.block, delta)
    return delta
  } catch (err) {
    if (!(err instanceof ConclaveError)) throw err
    return undefined
  }
}
