import { ConclaveError } from '../../core/errors.ts'
import type { HumanVote } from '../../core/records.ts'
import type { BusMessage } from '../../transport/index.ts'
import { federationOf, type StepContext, type StepOptions } from '../context.ts'
import { anchorRecord, type AnchorContext } from './anchor.ts'

export type ReactionContext = AnchorContext & Pick<StepContext, 'name' | 'held' | 'state' | 'logger'>

/** The reactions that are votes; Element may add the emoji presentation selector (U+FE0F). */
const VOTES: ReadonlyMap<string, boolean> = new Map([['👍', true], ['👎', false]])

/**
 * Anchors a researcher's 👍/👎 on a proposal as a human vote, if I am the recorder of the
 * proposal's round (one member anchors it, so it is anchored once). Only the charter's
 * researchers, only while the proposal is undecided, and only their first reaction on it:
 * the ledger refuses the rest anyway (state.ts), so they are not anchored to be refused.
 * Whether it counts toward the quorum is the charter's `humanVotes`.
 */
export async function recordReaction (ctx: ReactionContext, reaction: Extract<BusMessage, { kind: 'reaction' }>, options: StepOptions = {}): Promise<void> {
  const accept = VOTES.get(reaction.key.replace(/\uFE0F/g, ''))
  const charter = ctx.state.charter?.record
  const entry = ctx.state.proposals.get(reaction.proposal)
  if (accept === undefined || charter === undefined || entry === undefined || entry.decision !== undefined) return
  if (!(charter.researchers ?? []).includes(reaction.from)) return
  const round = entry.signed.record.round
  const key = `${entry.block} ${reaction.from}`
  if (ctx.state.recorder(round) !== ctx.identity.did || entry.humans.has(reaction.from) || ctx.held.reacted.has(key)) return
  const record: HumanVote = { type: 'human-vote', federation: federationOf(ctx), round, proposal: entry.block, accept, researcher: reaction.from, event: reaction.event }
  ctx.held.reacted.add(key)
  try {
    await anchorRecord(ctx, record, options)
  } catch (err) {
    if (!(err instanceof ConclaveError)) throw err
    ctx.logger.warn(`${ctx.name} could not anchor ${reaction.from}'s reaction as a human vote`, { error: err.name, reason: err.message })
  }
}
