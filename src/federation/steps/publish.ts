import type { AbortOptions } from '../../core/options.ts'
import type { ModelRef } from '../../core/records.ts'
import { putModel } from '../content.ts'
import { requireDraft, type StepContext } from '../context.ts'

/** Puts my draft's Δw in the content store (safetensors); its CID goes in the proposal. */
export async function publishDraft (ctx: Pick<StepContext, 'name' | 'held' | 'store' | 'timer'>, options: AbortOptions = {}): Promise<ModelRef> {
  const draft = requireDraft(ctx)
  draft.ref ??= await ctx.timer.time('publish', () => putModel(ctx.store, draft.delta, options))
  return draft.ref
}
