import { ConclaveError } from '../../core/errors.ts'
import type { BlockId } from '../../core/records.ts'
import { compressWithFeedback } from '../../ml/error-feedback.ts'
import type { Weights } from '../../ml/weights.ts'
import { cosine, knownSketchCosine, l2Norm, meanSketch, sketch, sketchable, sketchCosine, sketchSquares, supportCosine } from '../../ml/similarity.ts'
import { compressionOf, type HeldSketch, type Holdings, type StepContext, type StepOptions } from '../context.ts'
import type { ProposalEntry } from '../state.ts'
import { fetchProposed, type FetchContext } from './fetch-update.ts'
import { prepareUpdate, type TrainContext } from './train.ts'
import type { Geometry } from '../../core/terms.ts'

export type GeometryContext = TrainContext & Pick<StepContext, 'state'>

/*
 * How far back a vote looks. Kept for the whole run, a member's sketches (16 KiB for each update
 * it judged or proposed) were all read on every vote: 3 ms a vote at 300 sketches, 20 ms at
 * 1,900, 210 ms and 297 MiB at 19,000 (20 members judging every peer, 1,000 rounds). A vote on an
 * update of round r now reads rounds r − SKETCH_ROUNDS to r only, for a copy (earlierCosine) and
 * for what explains its direction (historyCosine) alike, and a member lets go of older ones as a
 * round's checkpoint is applied. 16 rounds: at 100 members judging every peer, 1,600 sketches,
 * 25 MiB a member and 8 ms a vote; with committees of 5, under 100 and under a millisecond; every
 * run the results report (Table 1 10 rounds at most, the robustness grid 3, classify's schedule
 * 15) measures as before. A copy of an update older than that still meets the state's refusal
 * of the same content (ReplayedUpdateError, all run long), its own last copy if re-sent each
 * round, the norm bound, and the judge's score on today's model; and its original no longer
 * explains its direction, so it must lie along my own update like any new one.
 */
/** Rounds before an update's own whose sketches it is measured against. */
export const SKETCH_ROUNDS = 16

/** Whether a sketch of round `of` is measured against by a vote on an update of `round`. */
const inWindow = (of: number, round: number): boolean => of >= round - SKETCH_ROUNDS

/**
 * How a peer's update lies against my own update of its round (trained now if I have none
 * yet: I need it to propose anyway) and against every update anchored before it in the
 * window of SKETCH_ROUNDS rounds.
 */
export async function measureGeometry (ctx: GeometryContext, { entry, delta }: { entry: ProposalEntry, delta: Weights }, options: StepOptions = {}): Promise<Geometry> {
  const { held, state } = ctx
  const round = entry.signed.record.round
  const own = await ownUpdate(ctx, round, options)
  const mine = own === undefined ? undefined : await asSent(ctx, round, own)
  // An update no sketch can be taken of is unmeasurable (thrown before it is kept): kept, it would make every later one so.
  const sk = held.sketches.find(s => s.block === entry.block) ?? holdSketch(held, { round, block: entry.block, sketch: sketch(delta) })
  // Everything anchored before it in the window counts, this round's proposals included: a copy comes after its original.
  const order = state.rounds.get(round)?.proposals ?? []
  const before = (s: HeldSketch): boolean => inWindow(s.round, round) && (s.round < round || (s.round === round && order.includes(s.block) && order.indexOf(s.block) < order.indexOf(entry.block)))
  const earlier = held.sketches.filter(before)
  // Each cosine taken once, for both: what explains a direction (merged, of an earlier round) was anchored before it.
  // Taken in a callback: the same loop written in this async function ran 2–4 times slower (V8 kept it in a lower tier).
  const cosines = earlier.map(s => knownSketchCosine(sk.sketch, sk.squares, s.sketch, s.squares))
  const largest = (among: (s: HeldSketch) => boolean): number => cosines.reduce((max, c, i) => among(earlier[i] as HeldSketch) ? Math.max(max, c) : max, -1)
  const earlierCosine = largest(() => true)
  // Only what the federation merged can explain a direction: a rejected member's own history cannot vouch for it.
  const historyCosine = largest(s => s.merged === true && s.round < round)
  const thisRound = earlier.filter(s => s.round === round).sort((a, b) => order.indexOf(a.block) - order.indexOf(b.block))
  // Rounding can carry a mean's cosine with its own copy past 1, which a vote's schema refuses.
  const roundCosine = thisRound.length === 0 ? {} : { roundCosine: Math.min(1, Math.max(-1, sketchCosine(sk.sketch, meanSketch(thisRound.map(s => s.sketch))))) }
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
 * would (a re-sent copy of it, a direction only its merge explains). Only noted while the
 * replay goes on: its round's window may end at a later checkpoint (settleSketches), and a
 * replay that fetched every judged Δw of the run read the whole run again to keep 16 rounds.
 */
export function recallSketch (held: Pick<Holdings, 'sketches' | 'recalled'>, entry: ProposalEntry): void {
  if (held.sketches.some(s => s.block === entry.block)) return
  held.recalled.push({ round: entry.signed.record.round, block: entry.block, entry })
}

/** Takes the sketches a replay recalled that its checkpoints kept, in the order it met them; one left when a fetch is aborted is taken by the next replay. */
export async function recallSketches (ctx: FetchContext, options: StepOptions = {}): Promise<void> {
  const { held } = ctx
  for (let next = held.recalled[0]; next !== undefined; next = held.recalled[0]) {
    let delta: Weights | undefined
    try {
      delta = await fetchProposed(ctx, next.entry, options)
    } catch (err) {
      if (!(err instanceof ConclaveError)) throw err
      // unusable: judged as such, it was never sketched
    }
    held.recalled.shift()
    if (delta === undefined || !sketchable(delta)) continue
    const kept = holdSketch(held, { round: next.round, block: next.block, sketch: sketch(delta) })
    if (next.merged === true) kept.merged = true
  }
}

/** Keeps the sketch of `block`'s update, to measure what is anchored after it: none of one no sketch can be taken of, which every judge found unmeasurable and kept none of. */
export function keepSketch (held: Pick<Holdings, 'sketches'>, { round, block, delta }: { round: number, block: BlockId, delta: Weights }): void {
  if (sketchable(delta)) holdSketch(held, { round, block, sketch: sketch(delta) })
}

function holdSketch (held: Pick<Holdings, 'sketches'>, { round, block, sketch }: { round: number, block: BlockId, sketch: Float32Array }): HeldSketch {
  const kept = { round, block, sketch, squares: sketchSquares(sketch) }
  held.sketches.push(kept)
  return kept
}

/**
 * What round `round`'s checkpoint does to my sketches: those it merged may now explain a later
 * update's direction, and those no later vote measures against (older than SKETCH_ROUNDS
 * before the next round) are let go, recalled ones too. A restarted member replays the
 * checkpoints too, so it holds the same window as one never stopped.
 */
export function settleSketches (held: Pick<Holdings, 'sketches' | 'recalled'>, { round, merged }: { round: number, merged: readonly BlockId[] }): void {
  settle(held.sketches, { round, merged })
  settle(held.recalled, { round, merged })
}

function settle (sketches: Array<{ readonly round: number, readonly block: BlockId, merged?: boolean }>, { round, merged }: { round: number, merged: readonly BlockId[] }): void {
  let kept = 0
  for (const s of sketches) {
    if (!inWindow(s.round, round + 1)) continue
    if (merged.includes(s.block)) s.merged = true
    sketches[kept++] = s
  }
  sketches.length = kept
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
