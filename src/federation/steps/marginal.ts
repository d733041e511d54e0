import { ConclaveError } from '../../core/errors.ts'
import type { BlockId } from '../../core/records.ts'
import type { ClassScore, Judge } from '../../ml/task.ts'
import { applyDelta, assertFinite, shiftedModel, type Weights } from '../../ml/weights.ts'
import { sketchable } from '../../ml/similarity.ts'
import type { HeldModel, StepOptions } from '../context.ts'
import { robustVerdict } from '../robust-acceptance.ts'
import type { ProposalEntry } from '../state.ts'
import { fetchProposed } from './fetch-update.ts'
import { measureGeometry, type GeometryContext } from './geometry.ts'
import type { Measurement, Robustness } from '../../core/terms.ts'

export type MarginalContext = GeometryContext

export interface MarginalParams {
  entry: ProposalEntry
  delta: Weights
  global: HeldModel
  /** Each update's share, as the charter's terms scale it. */
  scale: number
  judge: Judge<unknown>
  robustness: Robustness | undefined
  /** Whether the rule asks the scores class by class too (where the judge can give them). */
  byClass: boolean
}

/**
 * My judge's scores of the global model with the round's combined update applied, with and
 * without `entry`'s update: the combination is every update of the round's proposals (as far
 * as they are in) that I can use and my geometry bounds admit, my own proposal's included.
 * Updates the bounds refuse (scaled, noise, re-sent) stay out, so they cannot make every
 * other update look good or bad against them.
 */
export async function marginalScores (ctx: MarginalContext, params: MarginalParams, options: StepOptions = {}): Promise<Pick<Measurement, 'combined' | 'without' | 'classes'>> {
  const { entry, delta, global, scale, judge, byClass } = params
  const round = await admitted(ctx, params, options)
  const others = [...round.updates].filter(([block]) => block !== entry.block).map(([, d]) => d)
  const score = async (updates: readonly Weights[]): Promise<Scored> => await ctx.timer.time('evaluate', async () => {
    const weights = updates.reduce((w, d) => shiftedModel(w, d, scale), global.weights)
    const examples = ctx.held.shard.val
    if (!byClass || judge.byClass === undefined) return { score: await judge.score(weights, examples) }
    const classes = await judge.byClass(weights, examples)
    // One pass gives both: the classes' means weighted by what each counts (examples; NER's, tokens) are the score.
    return { score: classes.reduce((s, c) => s + c.n * c.mean, 0) / Math.max(1, classes.reduce((n, c) => n + c.n, 0)), classes }
  })
  round.combined ??= await score([...round.updates.values()])
  const combined = round.updates.has(entry.block) ? round.combined : await score([...others, delta])
  const without = await score(others)
  return { combined: combined.score, without: without.score, ...(combined.classes === undefined ? {} : { classes: classwise(combined.classes, without.classes ?? []) }) }
}

interface Scored { score: number, classes?: ClassScore[] }

/** Each label's mean score under the combination with and without the update (both measured on the same examples, so the labels agree). */
function classwise (combined: readonly ClassScore[], without: readonly ClassScore[]): NonNullable<Measurement['classes']> {
  return combined.map((c, i) => ({ label: c.label, n: c.n, combined: c.mean, without: without[i]?.mean ?? c.mean }))
}

/** The round's updates I admit to the combination, gathered once per global model and number of proposals. */
export async function admitted (ctx: MarginalContext, { entry, global, robustness }: MarginalParams, options: StepOptions): Promise<{ updates: Map<BlockId, Weights>, combined?: Scored }> {
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
  // My store gave me none of it ahead of judging: asked again here, it would hold up my turn as long.
  if (ctx.held.unfetched.has(entry.block)) return undefined
  try {
    const delta = await fetchProposed(ctx, entry, options)
    assertFinite(applyDelta(global.weights, delta))
    // One whose sketch overflows cannot be measured for its bounds: left out, not allowed to end the judgement of another.
    if (!sketchable(delta)) return undefined
    ctx.held.deltas.set(entry.block, delta)
    return delta
  } catch (err) {
    if (!(err instanceof ConclaveError)) throw err
    return undefined
  }
}
