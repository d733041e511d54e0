import { UnpublishedDraftError } from '../../core/errors.ts'
import type { AbortOptions } from '../../core/options.ts'
import type { BlockId } from '../../core/records.ts'
import { federationOf, requireDraft, requireGlobal, type StepContext } from '../context.ts'
import { anchorRecord, type AnchorContext } from './anchor.ts'
import { keepSketch } from './geometry.ts'

/** Signs, anchors and announces a proposal of my published draft, which it then no longer is. */
export async function proposeDraft (ctx: AnchorContext & Pick<StepContext, 'name' | 'held' | 'state'>, options: AbortOptions = {}): Promise<BlockId> {
  const draft = requireDraft(ctx)
  if (draft.ref === undefined) throw new UnpublishedDraftError('publish the draft before proposing it: the proposal must point at stored content')
  const global = requireGlobal(ctx)
  const block = await anchorRecord(ctx, {
    type: 'proposal',
    federation: federationOf(ctx),
    round: draft.round,
    base: global.ref.cid,
    delta: draft.ref,
    numSamples: draft.numSamples,
    metric: { name: 'loss', value: draft.loss }
  }, options)
  ctx.held.deltas.set(block, draft.delta)
  keepSketch(ctx.held, { round: draft.round, block, delta: draft.delta })
  ctx.held.draft = undefined
  return block
}
