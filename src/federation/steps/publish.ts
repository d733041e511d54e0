import type { AbortOptions } from '../../core/options.ts'
import type { ModelRef } from '../../core/records.ts'
import { compressWithFeedback } from '../../ml/error-feedback.ts'
import { putBytes } from '../content.ts'
import { compressionOf, requireDraft, type Draft, type StepContext } from '../context.ts'

export type PublishContext = Pick<StepContext, 'name' | 'held' | 'store' | 'state' | 'timer'>

/**
 * Puts my draft's Δw in the content store, encoded by the charter's compression; its CID
 * goes in the proposal. A lossy compression sends my update plus what my earlier ones did
 * not send, and the draft becomes what peers will decode; what is left I keep for next time.
 */
export async function publishDraft (ctx: PublishContext, options: AbortOptions = {}): Promise<ModelRef> {
  const draft = requireDraft(ctx)
  draft.ref ??= await ctx.timer.time('publish', () => publishUpdate(ctx, draft, options))
  return draft.ref
}

async function publishUpdate ({ held, store, state }: PublishContext, draft: Draft, options: AbortOptions): Promise<ModelRef> {
  const compression = compressionOf({ state })
  const packed = compressWithFeedback(draft.delta, compression.kind === 'none' ? undefined : await held.residuals.owed(draft.round), compression)
  const ref = await putBytes(store, packed.bytes, options)
  // Kept once the bytes are stored: a member killed before proposing them trains the round again and owes the same.
  if (packed.residual !== undefined) await held.residuals.keep(draft.round, packed.residual)
  draft.delta = packed.sent
  return ref
}
