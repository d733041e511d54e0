import { AlreadyProposedError, ConclaveError, DraftExistsError, InvalidWeightsError, NonFiniteUpdateError } from '../../core/errors.ts'
import { assertFinite, type Weights } from '../../ml/weights.ts'
import { requireGlobal, type Draft, type StepContext, type StepOptions } from '../context.ts'
import { readsRound, type LocalUpdate } from '../attacks.ts'
import { assertTaught, autoDistil, distillable, type DistilContext } from './distill.ts'
import { fetchProposed } from './fetch-update.ts'

export type TrainContext = DistilContext & Pick<StepContext, 'identity' | 'state' | 'conduct' | 'store' | 'keepContent'>

/** Whether my proposal for `round` is anchored and applied. */
export function hasProposed ({ state, identity }: Pick<StepContext, 'state' | 'identity'>, round: number): boolean {
  return (state.rounds.get(round)?.proposals ?? []).some(id => state.proposals.get(id)?.signed.issuer === identity.did)
}

/** Trains on the current global model and keeps the update as my draft for `round`. */
export async function train (ctx: TrainContext, { round }: { round: number }, options: StepOptions = {}): Promise<Draft> {
  options.signal?.throwIfAborted()
  const { held } = ctx
  requireGlobal(ctx)
  if (held.draft?.round === round) throw new DraftExistsError(`I already trained a draft for round ${round}: ${held.draft.ref === undefined ? 'publish' : 'anchor'} it next`)
  if (hasProposed(ctx, round)) throw new AlreadyProposedError(`I already proposed an update for round ${round}`)
  return trainDraft(ctx, round, options)
}

/** Trains my draft for `round` (the checks are the caller's), or takes the update I trained for it as my reference. */
export async function trainDraft (ctx: TrainContext, round: number, options: StepOptions = {}): Promise<Draft> {
  const { held } = ctx
  const prepared = readsRound(ctx.conduct.attackAt(round)) ? undefined : held.prepared.get(round)
  held.draft = prepared ?? await prepareUpdate(ctx, round, options)
  held.prepared.delete(round)
  return held.draft
}

/**
 * Starts training my update for `round` without waiting for it, where it depends on no one
 * else: I am honest (an attack may read the round's earlier updates) and have nothing left
 * to distil (distilling changes my shard, and asks a teacher others ask too; a task learned
 * from labels never has). With training on worker threads, every member starts before the
 * first proposes, so their training overlaps; the update is the one my turn would have
 * trained (the same global model, shard and seed).
 */
export function trainAhead (ctx: TrainContext, round: number, options: StepOptions = {}): void {
  const { held } = ctx
  if (ctx.conduct.attackAt(round) !== undefined || distillable(ctx) > 0 || held.prepared.has(round) || held.training.has(round) || hasProposed(ctx, round)) return
  const training = trainUpdate(ctx, round, options).finally(() => { held.training.delete(round) })
  training.catch(() => {}) // a failure is whoever takes the update's to see
  held.training.set(round, training)
}

/** My update for `round`: the one training ahead, or trained now; kept as prepared, and what I trained as my reference for judging the round's peers. */
export async function prepareUpdate (ctx: TrainContext, round: number, options: StepOptions = {}): Promise<Draft> {
  const training = ctx.held.training.get(round)
  // Waiting for my update to finish training is training time, whichever step waits for it.
  return training === undefined ? trainUpdate(ctx, round, options) : ctx.timer.time('train', () => training)
}

async function trainUpdate (ctx: TrainContext, round: number, options: StepOptions): Promise<Draft> {
  const { held } = ctx
  const global = requireGlobal(ctx)
  await autoDistil(ctx, options)
  assertTaught(ctx, held.shard.train, 'training', 'distil first')
  const shard = held.shard
  // What a hostile member may read of the round: the updates already proposed in it, fetched from the
  // store as anyone can (it need not have judged them: under the marginal rule nobody judges before all are in).
  const seen = ctx.conduct.attackAt(round) === undefined ? [] : await readRound(ctx, round, options)
  const update = await ctx.timer.time('train', () => ctx.conduct.update(shard, global.weights, round, seen))
  assertFiniteUpdate(ctx, round, update)
  const draft = { round, delta: update.delta, numSamples: update.numSamples, loss: update.loss }
  held.prepared.set(round, draft)
  // Hostile members still judge by what they trained: the attack is in what they publish.
  held.own.set(round, update.trained ?? update.delta)
  return draft
}

/**
 * Refuses an update that training left NaN or ±Infinity (NaN in my features, a learning rate that
 * diverged) before it becomes my draft: no record holds a NaN loss, no peer decodes a NaN Δw, so
 * it is never stored or proposed.
 */
function assertFiniteUpdate ({ name }: Pick<TrainContext, 'name'>, round: number, { delta, loss }: LocalUpdate): void {
  const refusal = (why: string): string => `${name}'s update for round ${round} is not finite (${why}): it will not propose it; check its training data and learning rate`
  if (!Number.isFinite(loss)) throw new NonFiniteUpdateError(refusal(`loss ${loss}`))
  try {
    assertFinite(delta)
  } catch (err) {
    if (!(err instanceof InvalidWeightsError)) throw err
    throw new NonFiniteUpdateError(refusal(err.message), { cause: err })
  }
}

/** The Δw of every proposal of `round` anchored so far that can be read; one that cannot is skipped. */
async function readRound (ctx: TrainContext, round: number, options: StepOptions): Promise<Weights[]> {
  const { held, state } = ctx
  const seen: Weights[] = []
  for (const id of state.rounds.get(round)?.proposals ?? []) {
    const entry = state.proposals.get(id)
    if (entry === undefined) continue
    try {
      const delta = await fetchProposed(ctx, entry, options)
      held.deltas.set(id, delta)
      seen.push(delta)
    } catch (err) {
      if (!(err instanceof ConclaveError)) throw err
    }
  }
  return seen
}
