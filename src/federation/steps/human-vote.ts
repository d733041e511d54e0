import { setTimeout as sleep } from 'node:timers/promises'
import { ConclaveError } from '../../core/errors.ts'
import type { BlockId, HumanVote } from '../../core/records.ts'
import type { BusMessage } from '../../transport/index.ts'
import { federationOf, type StepContext, type StepOptions } from '../context.ts'
import { anchorRecord, type AnchorContext } from './anchor.ts'
import type { Later } from './inbox.ts'

export type ReactionContext = AnchorContext & Pick<StepContext, 'name' | 'held' | 'state' | 'logger' | 'now'>
type Reaction = Extract<BusMessage, { kind: 'reaction' }>

/** The reactions that are votes; Element may add the emoji presentation selector (U+FE0F). */
const VOTES: ReadonlyMap<string, boolean> = new Map([['👍', true], ['👎', false]])
const voteOf = (key: string): boolean | undefined => VOTES.get(key.replace(/\uFE0F/g, ''))

/**
 * Anchors a researcher's 👍/👎 on a proposal as a human vote. Where the charter asks for w
 * witnesses (`humanWitnesses`, one unless set), the recorder of the proposal's round and the
 * standbys after it, 2w − 1 in all, anchor it at once, so that w − 1 hostile members among them
 * keeping silent still leave w (found red-teaming: with w at once, one silent member among them
 * left a reaction late in the window one witness short). The standby of rank k beyond them does
 * so k − 2w + 2 waits later (a tenth of the window, at most 30 s) if it is not the researcher's
 * vote by then: a recorder that is silent, or drops the votes it dislikes, drops none. Only the
 * charter's researchers, only while the proposal is undecided and inside its window, and only
 * their first reaction on it: the ledger refuses the rest anyway (state.ts), so they are not
 * anchored to be refused. Whether it counts toward the quorum is the charter's `humanVotes`.
 */
export async function recordReaction (ctx: ReactionContext, reaction: Reaction, { later, ...options }: StepOptions & { later?: Later } = {}): Promise<void> {
  const accept = voteOf(reaction.key)
  const charter = ctx.state.charter?.record
  const entry = ctx.state.proposals.get(reaction.proposal)
  if (accept === undefined || charter === undefined || entry === undefined || !(charter.researchers ?? []).includes(reaction.from)) return
  const round = entry.signed.record.round
  const rank = charter.members.findIndex((_, k) => ctx.state.standby(round, k) === ctx.identity.did)
  const waits = rank - 2 * (charter.humanWitnesses ?? 1) + 2
  if (rank >= 0 && waits <= 0) await anchorReaction(ctx, reaction, accept, options)
  else if (rank > 0 && later !== undefined) {
    later(sleep(waits * standInSeconds(charter.windowSeconds) * 1000, undefined, { ref: false }), async o => { await anchorReaction(ctx, reaction, accept, o) })
  }
}

/** How long each standby beyond those anchoring at once waits, per rank, before it anchors a reaction not yet its researcher's vote: a tenth of the window, at most 30 s. */
export function standInSeconds (windowSeconds: number): number {
  return Math.min(30, windowSeconds / 10)
}

async function anchorReaction (ctx: ReactionContext, reaction: Reaction, accept: boolean, options: StepOptions): Promise<void> {
  const entry = ctx.state.proposals.get(reaction.proposal)
  const window = ctx.state.charter?.record.windowSeconds
  if (entry === undefined || window === undefined || entry.decision !== undefined || ctx.now() > entry.time + window) return
  const key = `${entry.block} ${reaction.from}`
  if (entry.humans.has(reaction.from) || ctx.held.reacted.has(key)) return
  const record: HumanVote = { type: 'human-vote', federation: federationOf(ctx), round: entry.signed.record.round, proposal: entry.block, accept, researcher: reaction.from, event: reaction.event }
  ctx.held.reacted.add(key)
  try {
    await anchorRecord(ctx, record, options)
  } catch (err) {
    if (!(err instanceof ConclaveError)) throw err
    ctx.logger.warn(`${ctx.name} could not anchor ${reaction.from}'s reaction as a human vote`, { error: err.name, reason: err.message })
  }
}

/**
 * Asks the room whether it backs a human vote: the reaction its event id names exists, was
 * sent by the researcher, says the same 👍/👎, on that proposal's notice. A member that
 * anchors a human vote the researcher never made is found out here, by every peer in the
 * room, and named (`conclave:human-vote:unconfirmed`): the vote stays applied, as it does in
 * the audit, which has no room to ask; the ledger alone cannot tell a forged one.
 */
export async function confirmReaction (ctx: Pick<StepContext, 'bus' | 'room' | 'name' | 'logger'>, { block, record }: { block: BlockId, record: HumanVote }, options: StepOptions = {}): Promise<void> {
  if (ctx.bus.reaction === undefined) return
  let reason: string | undefined
  try {
    const seen = await ctx.bus.reaction(ctx.room, record.event, options)
    if (seen === undefined) reason = `the room holds no reaction ${record.event}`
    else if (seen.from !== record.researcher) reason = `reaction ${record.event} was sent by ${seen.from}, not ${record.researcher}`
    else if (voteOf(seen.key) !== record.accept) reason = `reaction ${record.event} is ${seen.key}, not a ${record.accept ? '👍' : '👎'}`
    else if (seen.proposal !== record.proposal) reason = `reaction ${record.event} is not on proposal ${record.proposal}'s notice`
  } catch (err) {
    if (options.signal?.aborted === true) throw err
    ctx.logger.warn(`${ctx.name} could not ask the room about reaction ${record.event}`, { error: (err as Error).message })
    return
  }
  if (reason === undefined) return
  ctx.logger.warn(`${ctx.name}: human vote in block ${block} is not backed by the room`, { reason })
  options.onProgress?.({ type: 'conclave:human-vote:unconfirmed', detail: { block, researcher: record.researcher, event: record.event, reason } })
}
