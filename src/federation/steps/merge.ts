import { DerivationMismatchError } from '../../core/errors.ts'
import type { AbortOptions } from '../../core/options.ts'
import type { Checkpoint, ModelRef } from '../../core/records.ts'
import { weightsSha256, type Weights } from '../../ml/weights.ts'
import type { ContentStore } from '../../storage/index.ts'
import { modelRef, putModel } from '../content.ts'
import { requireGlobal, type StepContext } from '../context.ts'
import { mergeRound, trustOf, type GlobalModel } from '../merge.ts'
import { fetchProposed } from './fetch-update.ts'

export type MergeContext = Pick<StepContext, 'name' | 'held' | 'state' | 'store' | 'timer' | 'shared' | 'keepContent'>

/**
 * The next global model as I derive it from the round's accepted proposals; where I share
 * a process with other members, the merge of the very same inputs is done once for all.
 */
export async function merge (ctx: MergeContext, { round }: { round: number }, options: AbortOptions = {}): Promise<GlobalModel> {
  const global = requireGlobal(ctx)
  return ctx.timer.time('merge', async () => {
    const entries = ctx.state.accepted(round)
    const compute = async (): Promise<GlobalModel> => {
      const accepted = []
      for (const entry of entries) {
        const delta = await fetchProposed(ctx, entry, options)
        accepted.push({ delta, numSamples: entry.signed.record.numSamples, trust: trustOf(entry) })
      }
      return mergeRound(global, accepted, ctx.state, round)
    }
    if (ctx.shared === undefined) return compute()
    return ctx.shared.merge(mergeInputs(ctx, round), compute)
  })
}

/** Everything my merge of round `round` reads: the charter (rule, momentum), the parent and its step, each accepted update and its weight, the round's proposed samples. */
export function mergeInputs (ctx: Pick<MergeContext, 'name' | 'held' | 'state'>, round: number): string {
  const global = requireGlobal(ctx)
  return JSON.stringify({
    charter: ctx.state.charter?.jwt,
    parent: global.ref.cid,
    step: global.step === undefined ? null : weightsSha256(global.step),
    accepted: ctx.state.accepted(round).map(e => [e.signed.record.delta.cid, e.signed.record.numSamples, trustOf(e)]),
    proposed: (ctx.state.rounds.get(round)?.proposals ?? []).map(id => ctx.state.proposals.get(id)?.signed.record.numSamples ?? 0)
  })
}

/**
 * My merge of a checkpoint's round, which must hash to the model the recorder anchored before
 * it may become my global model. It is put on my store, pinned, and must be stored under the
 * CID the checkpoint names: my copy of the run replays the checkpoint by that CID when the
 * recorder's node is gone (a read-only replay stores nothing: it computes the CID, as the audit does).
 */
export async function checkMerge (ctx: MergeContext, { checkpoint }: { checkpoint: Checkpoint }, options: AbortOptions = {}): Promise<GlobalModel> {
  // The merge I kept for my own checkpoint, if the round still reads the same: a proposal
  // anchored before my checkpoint got that one refused, and a standby's merges it too.
  const kept = ctx.held.merged.get(checkpoint.round)
  const merged = kept !== undefined && kept.inputs === mergeInputs(ctx, checkpoint.round) ? kept.model : await merge(ctx, { round: checkpoint.round }, options)
  const sha256 = weightsSha256(merged.weights)
  if (sha256 !== checkpoint.model.sha256) {
    throw new DerivationMismatchError(`checkpoint of round ${checkpoint.round} claims model ${checkpoint.model.sha256}, my merge of the accepted updates gives ${sha256}`)
  }
  const { cid } = ctx.keepContent ? await storeMerged(ctx, merged, options) : await modelRef(merged.weights)
  if (cid !== checkpoint.model.cid) throw new DerivationMismatchError(`checkpoint of round ${checkpoint.round} names model ${checkpoint.model.cid}, my merge of the accepted updates is ${cid}`)
  return merged
}

/** Each store's merged models, by their weights: members of one process share a merge's weights (SharedWork), so it is put once. */
const stored = new WeakMap<ContentStore, WeakMap<Weights, Promise<ModelRef>>>()

/** Puts a merged model on my store, pinned, once per store and model; its reference. */
export async function storeMerged (ctx: Pick<MergeContext, 'store'>, merged: GlobalModel, options: AbortOptions = {}): Promise<ModelRef> {
  const models = stored.get(ctx.store) ?? new WeakMap<Weights, Promise<ModelRef>>()
  stored.set(ctx.store, models)
  let ref = models.get(merged.weights)
  if (ref === undefined) {
    ref = putModel(ctx.store, merged.weights, options)
    models.set(merged.weights, ref)
    // A put that failed is tried again by the next caller.
    ref.catch(() => { models.delete(merged.weights) })
  }
  return ref
}
