import { z } from 'zod'
import { BackendUnavailableError, ConclaveError, NotOnCommitteeError, TrainPoolClosedError, TrainWorkerCrashedError, UnmeasurableUpdateError } from '../../core/errors.ts'
import type { BlockId } from '../../core/records.ts'
import { whileUnavailable } from '../../core/retry.ts'
import { judgeOf, type Judge } from '../../ml/task.ts'
import { shiftedModel, type Weights } from '../../ml/weights.ts'
import { ruleOf, ruling } from '../acceptance-terms.ts'
import { requireGlobal, termsFor, type Evaluation, type HeldModel, type StepContext, type StepOptions } from '../context.ts'
import type { ProposalEntry } from '../state.ts'
import { assertTaught, autoDistil } from './distill.ts'
import { fetchProposed } from './fetch-update.ts'
import { measureGeometry, ownUpdate, type GeometryContext } from './geometry.ts'
import { admitted, marginalScores, type MarginalParams } from './marginal.ts'
import { type Measured, type Measurement, VoteMeasurement } from '../../core/terms.ts'

export type EvaluateContext = GeometryContext & Pick<StepContext, 'store' | 'state' | 'identity' | 'terms' | 'shared'>

/**
 * Refuses a member the proposal's committee was not drawn from: it may neither judge nor
 * vote, so it skips the fetch and the measurement (that is what a committee saves).
 */
export function assertJudge ({ state, identity }: Pick<StepContext, 'state' | 'identity'>, entry: ProposalEntry): void {
  if (!state.judges(entry.block).includes(identity.did)) {
    throw new NotOnCommitteeError(`${identity.did} is not on the committee of ${entry.block}: only ${state.judges(entry.block).join(', ')} judge it`)
  }
}

/** Failures of the voter's own means (a store or ledger that does not answer, its training workers), not of the update. */
const MINE = [BackendUnavailableError, TrainWorkerCrashedError, TrainPoolClosedError]

/**
 * Fetches a peer's Δw, checks it, measures global + Δw (or its share) against global on my
 * validation data and asks the charter's acceptance terms. An update that cannot be used is evaluated
 * as such, never thrown: the only vote on it is reject. A failure of my own means (MINE) is no
 * fault of the update: evaluated again while my store or ledger does not answer, then thrown.
 * Measured once per proposal.
 */
export async function evaluate (ctx: EvaluateContext, { entry }: { entry: ProposalEntry }, options: StepOptions = {}): Promise<Evaluation> {
  // Asked for in every try ahead of judging: asking again in my turn would hold it up as long.
  if (ctx.held.unfetched.has(entry.block)) throw new BackendUnavailableError(`my store gave me the update of ${entry.block} in no try; it stays unjudged until its round is merged`)
  return whileUnavailable(async () => evaluateOnce(ctx, entry, options), {
    signal: options.signal,
    onRetry: (err, seconds) => { ctx.logger.warn(`${ctx.name} could not evaluate ${entry.block} yet; trying again in ${seconds} s`, { reason: err.message }) }
  })
}

async function evaluateOnce (ctx: EvaluateContext, entry: ProposalEntry, options: StepOptions): Promise<Evaluation> {
  const { held, task } = ctx
  const known = held.evaluations.get(entry.block)
  if (known !== undefined) return known
  assertJudge(ctx, entry)
  const global = requireGlobal(ctx)
  await autoDistil(ctx, options)
  const shard = held.shard
  // Without answers to my own validation questions I cannot judge, and must not reject for it.
  assertTaught(ctx, shard.val, 'validation', 'distil before judging')
  const base = { proposal: entry.block, proposer: entry.signed.issuer, round: entry.signed.record.round }
  let evaluation: Evaluation
  try {
    const delta = await ctx.timer.time('fetchVerify', () => fetchProposed(ctx, entry, options))
    // Held at once, so a member training its reference now reads it as the round's.
    held.deltas.set(entry.block, delta)
    const terms = termsFor(ctx)
    const scale = terms.scale === 'share' ? 1 / Math.max(1, ctx.state.members.size) : 1
    const judge = judgeOf(task)
    const before = await judged(ctx, global, judge)
    const shifted = shiftedModel(global.weights, delta, scale)
    const after = await ctx.timer.time('evaluate', () => judge.score(shifted, shard.val))
    const scores: Measurement = { before, after }
    const needs = ruleOf(terms).needs
    if (needs.includes('initial') && held.initial !== undefined) scores.initial = await judged(ctx, held.initial, judge)
    if (needs.includes('reference')) {
      const round = entry.signed.record.round
      const mine = await ownUpdate(ctx, round, options)
      if (mine !== undefined) scores.reference = await referenceScore(ctx, { round, global, mine, scale, judge })
    }
    const marginal = { entry, delta, global, scale, judge, robustness: terms.robustness, byClass: needs.includes('classes') }
    if (needs.includes('entropy') && judge.entropy !== undefined) {
      const entropy = judge.entropy.bind(judge)
      scores.entropy = await entropies(ctx, { entry, global, shifted, scale, entropy }, options)
      if (terms.sharpeningYardstick === 'round') scores.entropy.round = await roundEntropies(ctx, { ...marginal, entropy }, options)
    }
    if (needs.includes('movement') && judge.movement !== undefined) scores.movement = await movements(ctx, { ...marginal, shifted, movement: judge.movement.bind(judge) }, options)
    if (needs.includes('combined')) Object.assign(scores, await marginalScores(ctx, marginal, options))
    const geometry = terms.robustness === undefined ? undefined : await ctx.timer.time('evaluate', () => measureGeometry(ctx, { entry, delta }, options))
    const measurement = signable(geometry === undefined ? scores : { ...scores, geometry })
    const verdict = ruling(terms, measurement, ctx.state.standing(entry.block))
    const score = after - before
    const summary = `${judge.name} on my ${shard.val.length} validation examples: ${before.toFixed(4)} → ${after.toFixed(4)} (${score >= 0 ? '+' : ''}${score.toFixed(4)}; ${mineSummary(scores)}may fall ${verdict.allowance.toFixed(4)})${verdict.geometry}`
    evaluation = { ...base, before, after, score, passes: verdict.accept, summary, measurement, verdict: { accept: verdict.accept, allowance: verdict.allowance }, geometry }
  } catch (err) {
    if (!(err instanceof ConclaveError) || MINE.some(kind => err instanceof kind)) throw err
    options.onProgress?.({ type: 'conclave:record:rejected', detail: { block: entry.block, error: err } })
    evaluation = { ...base, before: Number.NaN, after: Number.NaN, score: 0, passes: false, summary: `cannot use this update: ${err.code}`, unusable: err.code }
  }
  held.evaluations.set(entry.block, evaluation)
  options.onProgress?.({ type: 'conclave:evaluated', detail: evaluation })
  return evaluation
}

/** The measurement as my vote will sign it: an update scored NaN, infinite or beyond the signable limit can only be rejected as unusable. */
function signable (measurement: Measured): Measured {
  const parsed = VoteMeasurement.safeParse(measurement)
  if (!parsed.success) throw new UnmeasurableUpdateError(`my measurement of this update cannot be signed: ${z.prettifyError(parsed.error)}`)
  return measurement
}

function mineSummary ({ before, reference, combined, without }: Measurement): string {
  const signed = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(4)}`
  const own = reference === undefined ? '' : `my own update ${signed(reference - before)}; `
  return own + (combined === undefined || without === undefined ? '' : `the round's combined update ${signed(combined - before)}, ${signed(combined - without)} of it this one's; `)
}

/** My judge's score of the global model with my own update of `round` applied as a peer's would be, measured once per round. */
async function referenceScore (ctx: Pick<StepContext, 'held' | 'timer'>, { round, global, mine, scale, judge }: { round: number, global: HeldModel, mine: Weights, scale: number, judge: Judge<unknown> }): Promise<number> {
  const known = ctx.held.referenceScores.get(round)
  if (known?.model === global.ref.cid) return known.score
  const score = await ctx.timer.time('evaluate', () => judge.score(shiftedModel(global.weights, mine, scale), ctx.held.shard.val))
  ctx.held.referenceScores.set(round, { model: global.ref.cid, score })
  return score
}

type Entropy = (weights: Weights, rows: unknown[]) => Promise<number>

/**
 * How unsure my model is of its predictions on my validation examples (mean entropy): the
 * global model's (once per model), with this update, and with my own update of its round
 * (once per round and model, beside its score).
 */
async function entropies (ctx: EvaluateContext, { entry, global, shifted, scale, entropy }: { entry: ProposalEntry, global: HeldModel, shifted: Weights, scale: number, entropy: Entropy }, options: StepOptions): Promise<NonNullable<Measurement['entropy']>> {
  const val = ctx.held.shard.val
  global.unsure ??= await ctx.timer.time('evaluate', () => entropy(global.weights, val))
  // The model with the update, as its score was measured: a judge that keeps its forward pass answers from it.
  const after = await unsureWith(ctx, global, entry.block, () => shifted, entropy)
  const mine = await ownUpdate(ctx, entry.signed.record.round, options)
  if (mine === undefined) return { before: global.unsure, after }
  const reference = await ownOnce(ctx, entry.signed.record.round, global, 'unsure', async () => entropy(shiftedModel(global.weights, mine, scale), val))
  return { before: global.unsure, after, reference }
}

/**
 * How unsure my model is with each other update of the round I combine applied at its share,
 * `entry`'s and mine excepted (those are the vote's `after` and `reference`): the round's
 * yardstick for `sharpeningYardstick: round`.
 */
async function roundEntropies (ctx: EvaluateContext, params: MarginalParams & { entropy: Entropy }, options: StepOptions): Promise<number[]> {
  const { global, scale, entropy } = params
  const entropies: number[] = []
  for (const [block, delta] of await othersOfRound(ctx, params, options)) {
    entropies.push(await unsureWith(ctx, global, block, () => shiftedModel(global.weights, delta, scale), entropy))
  }
  return entropies
}

/** The round's updates I combine, but for `entry`'s and mine: the round's yardstick beside a vote's `after` and `reference`. */
async function othersOfRound (ctx: EvaluateContext, params: MarginalParams, options: StepOptions): Promise<Array<[BlockId, Weights]>> {
  const { updates } = await admitted(ctx, params, options)
  return [...updates].filter(([block]) => block !== params.entry.block && ctx.state.proposals.get(block)?.signed.issuer !== ctx.identity.did)
}

/** How unsure my model is with `block`'s update applied (`shifted`), measured once per global model: a vote's `after`, and the round's yardstick in the votes on the round's other updates. */
async function unsureWith (ctx: Pick<StepContext, 'held' | 'timer'>, global: HeldModel, block: BlockId, shifted: () => Weights, entropy: Entropy): Promise<number> {
  return onceFor(ctx, global.unsureWith ??= new Map(), block, async () => entropy(shifted(), ctx.held.shard.val))
}

type Movement = (from: Weights, to: Weights, rows: unknown[]) => Promise<number>

/**
 * How far this update, my own of its round and each other update of the round I combine, each
 * applied at its share, move my model's predictions on my validation examples from the global
 * model's: for the `minMovement` term (each measured once per global model).
 */
async function movements (ctx: EvaluateContext, params: MarginalParams & { shifted: Weights, movement: Movement }, options: StepOptions): Promise<NonNullable<Measurement['movement']>> {
  const { entry, global, scale, shifted, movement } = params
  const val = ctx.held.shard.val
  const moved = global.movedBy ??= new Map()
  const after = await onceFor(ctx, moved, entry.block, async () => movement(global.weights, shifted, val))
  const round: number[] = []
  for (const [block, delta] of await othersOfRound(ctx, params, options)) {
    round.push(await onceFor(ctx, moved, block, async () => movement(global.weights, shiftedModel(global.weights, delta, scale), val)))
  }
  const mine = await ownUpdate(ctx, entry.signed.record.round, options)
  if (mine === undefined) return { after, round }
  const reference = await ownOnce(ctx, entry.signed.record.round, global, 'moved', async () => movement(global.weights, shiftedModel(global.weights, mine, scale), val))
  return { after, reference, round }
}

/** `measure` of my own update of `round`, kept beside its score for this global model (once per round and model). */
async function ownOnce (ctx: Pick<StepContext, 'held' | 'timer'>, round: number, global: HeldModel, key: 'unsure' | 'moved', measure: () => Promise<number>): Promise<number> {
  const known = ctx.held.referenceScores.get(round)
  const kept = known?.model === global.ref.cid ? known[key] : undefined
  if (kept !== undefined) return kept
  const value = await ctx.timer.time('evaluate', measure)
  if (known?.model === global.ref.cid) known[key] = value
  return value
}

/** `measure` of `block`'s update, from `known` if measured on this global model already. */
async function onceFor (ctx: Pick<StepContext, 'timer'>, known: Map<BlockId, number>, block: BlockId, measure: () => Promise<number>): Promise<number> {
  const hit = known.get(block)
  if (hit !== undefined) return hit
  const value = await ctx.timer.time('evaluate', measure)
  known.set(block, value)
  return value
}

/** My judge's score of `model` on my validation examples, measured once until they change. */
async function judged (ctx: Pick<StepContext, 'held' | 'timer'>, model: { weights: Weights, judged?: number }, judge: Judge<unknown>): Promise<number> {
  model.judged ??= await ctx.timer.time('evaluate', () => judge.score(model.weights, ctx.held.shard.val))
  return model.judged
}
