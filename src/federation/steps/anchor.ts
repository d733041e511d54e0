import { BackendUnavailableError, DuplicateRecordError } from '../../core/errors.ts'
import { ANCHOR_SKEW_SECONDS } from '../../core/limits.ts'
import type { AbortOptions } from '../../core/options.ts'
import type { BlockId, Record } from '../../core/records.ts'
import { whileUnavailable } from '../../core/retry.ts'
import type { Block, Ledger } from '../../ledger/index.ts'
import type { StepContext } from '../context.ts'

export type AnchorContext = Pick<StepContext, 'name' | 'identity' | 'ledger' | 'bus' | 'room' | 'timer' | 'now' | 'logger'>

/** How long after signing a record its anchoring may still be tried: its block must be dated within ANCHOR_SKEW_SECONDS of it, with time to mine and deliver. */
const ANCHOR_TRIES_SECONDS = ANCHOR_SKEW_SECONDS - 15

/**
 * Signs a record, anchors it on the ledger and announces it on the bus (both tried again
 * while unavailable); returns its block id.
 * A ledger that gives no answer in time (a replica whose block has not come back through the
 * bus) is asked again with the same signed record while its block would still be dated near
 * it: every ledger anchors a signed record once, so an append that went through and whose
 * answer was lost is found, never anchored twice.
 */
export async function anchorRecord (ctx: AnchorContext, record: Record, options: AbortOptions = {}): Promise<BlockId> {
  options.signal?.throwIfAborted()
  const lastTryBy = Date.now() + ANCHOR_TRIES_SECONDS * 1000
  const jwt = await ctx.identity.sign(record, { now: ctx.now() })
  // A vote is timed from its proposal's block, so it must descend from it.
  const after = record.type === 'vote' || record.type === 'human-vote' ? record.proposal : undefined
  const block = await ctx.timer.time('anchor', () => whileUnavailable(async () => {
    try {
      return await ctx.ledger.append(jwt, { ...options, after })
    } catch (err) {
      // "Already anchored" means the try before went through, or someone who saw this freshly
      // signed record in flight (an IOTA node) anchored it first: it is anchored all the same.
      if (err instanceof DuplicateRecordError) return anchored(ctx.ledger, jwt, err)
      throw err
    }
  }, {
    signal: options.signal,
    lastTryBy,
    onRetry: (err, seconds) => { ctx.logger.warn(`${ctx.name}: the ledger did not anchor my ${record.type} yet; trying again in ${seconds} s`, { reason: err.message }) }
  }))
  // Unannounced, the record is applied by the others only once a later record brings them to it: none follows a run's last checkpoint.
  await ctx.timer.time('announce', () => whileUnavailable(async () => ctx.bus.publish(ctx.room, { kind: 'record', block: block.id, jwt }, options), {
    signal: options.signal,
    onRetry: (err, seconds) => { ctx.logger.warn(`${ctx.name}: the bus did not take the announcement of my ${record.type} yet; trying again in ${seconds} s`, { reason: err.message }) }
  }))
  return block.id
}

/** The block that anchors `jwt`, found by reading the ledger; not there yet (a copy still catching up), the ledger is asked again. */
async function anchored (ledger: Ledger, jwt: string, err: DuplicateRecordError): Promise<Block> {
  for await (const block of ledger.blocks()) if (block.record === jwt) return block
  throw new BackendUnavailableError('the ledger says this record is anchored, but holds no block for it yet', { cause: err })
}
