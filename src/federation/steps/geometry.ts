import { ConclaveError } from '../../core/errors.ts'
import type { BlockId } from '../../core/records.ts'
import { compressWithFeedback } from '../../ml/error-feedback.ts'
import type { Weights } from '../../ml/weights.ts'
import { cosine, l2Norm, meanSketch, sketch, sketchable, sketchCosine, supportCosine } from '../../ml/similarity.ts'
import { compressionOf, type Holdings, type StepContext, type StepOptions } from '../context.ts'
import type { ProposalEntry } from '../state.ts'
import { fetchProposed, type FetchContext } from './fetch-update.ts'
import { prepareUpdate, type TrainContext } from './train.ts'
import type { Geometry } from '../../core/terms.ts'

export type GeometryContext = TrainContext & Pick<StepContext, 'state'>

/**
 * How a peer's update lies against my own update of its round (trained now if I have none
 * yet: I need it to propose anyway) and against every update anchored before it.
 */
export async function measureGeometry (ctx: GeometryContext, { entry, delta }: { entry: ProposalEntry, delta: Weights }, options: StepOptions = {}): Promise<Geometry> {
  const { held, state } = ctx
  const round = entry.signed.record.round
  const own = await ownUpdate(ctx, round, options)
  const mine = own === undefined ? undefined : await asSent(ctx, round, own)
  const known = held.sketches.find(s => s.block === entry.block)
  // An update no sketch can be taken of is unmeasurable (thrown before it is kept): kept, it would make every later one so.
  const sk = known?.sketch ?? sketch(delta)
  if (known === undefined) held.sketches.push({ round, block: entry.block, sketch: sk })
  // Everything anchored before it counts, this round's proposals included: a copy comes after its original.
  const order = state.rounds.get(round)?.proposals ?? []
  const before = (s: { round: number, block: string }): boolean => s.round < round || (s.round === round && order.includes(s.block) && order.indexOf(s.block) < order.indexOf(entry.block))
  const likeness = (list: ReadonlyArray<{ sketch: Float32Array }>): number => list.reduce((max, s) => Math.max(max, sketchCosine(sk, s.sketch)), -1)
  const earlier = held.sketches.filter(before)
  const earlierCosine = likeness(earlier)
  const thisRound = earlier.filter(s => s.round === round).sort((a, b) => order.indexOf(a.block) - order.indexOf(b.block))
  // Rounding can carry a mean's cosine with its own copy past 1, which a vote's schema refuses.
  const roundCosine = thisRound.length === 0 ? {} : { roundCosine: Math.min(1, Math.max(-1, sketchCosine(sk, meanSketch(thisRound.map(s => s.sketch))))) }
  // Only what the federation merged can explain a direction: a rejected member's own history cannot vouch for it.
  const historyCosine = likeness(held.sketches.filter(s => s.merged === true && s.round < round))
  if (mine === undefined) return { earlierCosine, historyCosine, ...roundCosine }
  const norm = l2Norm(mine.sent)
  // A sparse update is compared where it sends, with all I would send before choosing mine.
  const direction = compressionOf(ctx).kind === 'topk' ? supportCosine(delta, mine.total) : cosine(delta, mine.sent)
  return { earlierCosine, historyCosine, ...roundCosine, normRatio: norm === 0 ? Number.POSITIVE_INFINITY : l2Norm(delta) / norm, cosine: direction }
}

/**
 * My own update of `round` as the charter's compression sends it, with what my earlier updates
 * left unsent: the form every peer's update arrives in, so norms and directions are compared like
 * with like (`total`: with what was owed, before compressing). Under topk with error feedback
 * a sent update carries its sender's backlog, and its norm against my uncompressed update grew
 * round by round (0.5–1.2× in round 1 to 1.4–2.4× in round 4, classify dev, seed 1) towards
 * the bound every honest update must stay under. The compression my publish made (or will make) of it.
 */
async function asSent (ctx: GeometryContext, round: number, own: Weights): Promise<{ sent: Weights, total: Weights }> {
  const compression = compressionOf(ctx)
  if (compression.kind === 'none') return { sent: own, total: own }
  return compressWithFeedback(own, await ctx.held.residuals.owed(round), compression)
}

/**
 * A proposal replayed from the ledger after a restart: its sketch, as I had taken it when it
 * was proposed or judged, so that I measure what comes after it as a member never stopped
 * would (a re-sent copy of it, a direction only its merge explains).
 */
export async function recallSketch (ctx: FetchContext, entry: ProposalEntry, options: StepOptions = {}): Promise<void> {
  const { held } = ctx
  if (held.sketches.some(s => s.block === entry.block)) return
  let delta: Weights
  try {
    delta = await fetchProposed(ctx, entry, options)
  } catch (err) {
    if (!(err instanceof ConclaveError)) throw err
    return // unusable: judged as such, it was never sketched
  }
  keepSketch(held, { round: entry.signed.record.round, block: entry.block, delta })
}

/** Keeps the sketch of `block`'s update, to measure what is anchored after it: none of one no sketch can be taken of, which every judge found unmeasurable and kept none of. */
export function keepSketch (held: Pick<Holdings, 'sketches'>, { round, block, delta }: { round: number, block: BlockId, delta: Weights }): void {
  if (sketchable(delta)) held.sketches.push({ round, block, sketch: sketch(delta) })
}

/**
 * My own update for `round`: the one I trained, or one trained now while the round is open.
 * Having proposed, I lack it only after a restart: trained again (training is seeded by the
 * round), it is the one I proposed from. If I cannot train (my training questions not yet
 * taught), I have none: that is my shortcoming, not the peer's, so its update is not refused for it.
 */
export async function ownUpdate (ctx: GeometryContext, round: number, options: StepOptions): Promise<Weights | undefined> {
  const { held, state } = ctx
  const known = held.own.get(round)
  if (known !== undefined) return known
  if (state.currentRound() !== round) return undefined
  try {
    await prepareUpdate(ctx, round, options)
  } catch (err) {
    if (!(err instanceof ConclaveError)) throw err
    return undefined
  }
  return held.own.get(round)
}
