import type { AbortOptions } from '../../core/options.ts'
import type { BlockId, Record } from '../../core/records.ts'
import type { StepContext } from '../context.ts'

export type AnchorContext = Pick<StepContext, 'identity' | 'ledger' | 'bus' | 'room' | 'timer' | 'now'>

/** Signs a record, anchors it on the ledger and announces it on the bus; returns its block id. */
export async function anchorRecord (ctx: AnchorContext, record: Record, options: AbortOptions = {}): Promise<BlockId> {
  options.signal?.throwIfAborted()
  const jwt = await ctx.identity.sign(record, { now: ctx.now() })
  // A vote is timed from its proposal's block, so it must descend from it.
  const block = await ctx.timer.time('anchor', () => ctx.ledger.append(jwt, { ...options, after: record.type === 'vote' || record.type === 'human-vote' ? record.proposal : undefined }))
  await ctx.timer.time('announce', () => ctx.bus.publish(ctx.room, { kind: 'record', block: block.id, jwt }, options))
  return block.id
}
