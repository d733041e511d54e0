import { DerivationMismatchError } from '../../core/errors.ts'
import type { AbortOptions } from '../../core/options.ts'
import type { Checkpoint } from '../../core/records.ts'
import { weightsSha256 } from '../../ml/weights.ts'
import { requireGlobal, type StepContext } from '../context.ts'
import { mergeRound, trustOf, type GlobalModel } from '../merge.ts'
import { fetchProposed } from './fetch-update.ts'

export type MergeContext = Pick<StepContext, 'name' | 'held' | 'state' | 'store' | 'timer'>

/** The next global model as I derive it from the round's accepted proposals. */
export async function merge (ctx: MergeContext, { round }: { round: number }, options: AbortOptions = {}): Promise<GlobalModel> {
  const global = requireGlobal(ctx)
  return ctx.timer.time('merge', async () => {
    const accepted = []
    for (const entry of ctx.state.accepted(round)) {
      const delta = ctx.held.deltas.get(entry.block) ?? await fetchProposed(ctx, entry, options)
      accepted.push({ delta, numSamples: entry.signed.record.numSamples, trust: trustOf(entry) })
    }
    return mergeRound(global, accepted, ctx.state, round)
  })
}

/** My merge of a checkpoint's round, which must hash to the model the recorder anchored before it may become my global model. */
export async function checkMerge (ctx: MergeContext, { checkpoint }: { checkpoint: Checkpoint }, options: AbortOptions = {}): Promise<GlobalModel> {
  const merged = ctx.held.merged.get(checkpoint.round) ?? await merge(ctx, { round: checkpoint.round }, options)
  const sha256 = weightsSha256(merged.weights)
  if (sha256 !== checkpoint.model.sha256) {
    throw new DerivationMismatchError(`checkpoint of round ${checkpoint.round} claims model ${checkpoint.model.sha256}, my merge of the accepted updates gives ${sha256}`)
  }
  return merged
}
