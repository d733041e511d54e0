import { ruleOf } from '../acceptance-terms.ts'
import { termsFor, type StepContext } from '../context.ts'
import { ConclaveError, NotAnchoredError, RecordTimeMismatchError, WrongFederationError } from '../../core/errors.ts'
import { ANCHOR_SKEW_SECONDS } from '../../core/limits.ts'
import { POLICY, type BlockId, type Charter, type SignedRecord } from '../../core/records.ts'
import { peekRecord, verifiedSigner } from '../../identity/index.ts'
import { forgedMeasurement } from '../attacks.ts'
import { fetchModel } from '../content.ts'
import type { StepOptions } from '../context.ts'
import type { GlobalModel } from '../merge.ts'
import type { ProposalEntry } from '../state.ts'
import type { Block } from '../../ledger/index.ts'
import { recordCheckpoint, roundDecided, type CloseContext } from './close-round.ts'
import { evaluate, type EvaluateContext } from './evaluate.ts'
import { fetchAhead } from './fetch-ahead.ts'
import { recallSketch, recallSketches, settleSketches } from './geometry.ts'
import { confirmReaction } from './human-vote.ts'
import { checkMerge } from './merge.ts'
import { hasVoted, vote, type VoteContext } from './vote.ts'

export type InboxContext = CloseContext & EvaluateContext & VoteContext & Pick<StepContext, 'collusion'>

export interface Announcement {
  block: BlockId
  jwt: string
  /** Who announced it, as the room vouches (a Matrix account); absent on a bus that cannot tell. */
  from?: string
  /**
   * Called with the wait for a block the ledger does not hold yet, instead of waiting: the
   * caller handles the record again once that wait ends, so records announced after it are
   * handled meanwhile. Absent, or on that second try: the record is judged as it stands.
   */
  defer?: (arrival: Promise<unknown>) => void
  /**
   * Runs `then` in my turn once `arrival` settles, handling the records that come meanwhile:
   * how my autopilot waits for a peer's Δw (steps/fetch-ahead.ts). Absent (catching up, or
   * a caller of my own), it waits in the record's turn.
   */
  later?: Later
}

export type Later = (arrival: Promise<unknown>, then: (options: StepOptions) => Promise<void>) => void

/**
 * Handles a record announced on the bus: checks that the ledger anchors it, then handles
 * every block my ledger holds before it that I have not, in the ledger's order, and then
 * it. The ledger's order decides, not the bus's: a record anchored and never announced, or
 * announced out of turn, counts where the audit counts it (found red-teaming: a vote anchored
 * and never announced was counted by the audit and by no live member).
 */
export async function receive (ctx: InboxContext, { block: blockId, jwt, from, defer, later }: Announcement, options: StepOptions = {}): Promise<void> {
  if (ctx.state.has(blockId)) return // at-least-once delivery: seen it
  let block: Block | undefined
  try {
    block = await ctx.timer.time('fetchVerify', () => ctx.ledger.get(blockId, { ...options, wait: false }))
    if (block === undefined && defer !== undefined) {
      // Only a member's signed record is waited for: a replica asks the room for the block on
      // the share (ledger/gaps.ts) of whoever announced it where the room says who (anyone may
      // re-announce a record it saw go by, and under made-up ids would otherwise spend its
      // signer's share at a copy that does not hold it yet), else on its signer's; not at all
      // when it holds the record under another block.
      const signer = verifiedSigner(jwt, ctx.state.charter === undefined ? undefined : ctx.state.members)
      const never = neverThisRun(ctx.state.charter, jwt)
      if (never !== undefined) throw never
      // The lookup on the second try reports whatever made the wait fail.
      defer(ctx.ledger.get(blockId, { ...options, signer: from ?? signer, record: jwt }).catch(() => undefined))
      return
    }
    if (block?.record !== jwt) throw new NotAnchoredError(`announced record is not what block ${blockId} anchors`)
  } catch (err) {
    refused(ctx, blockId, err, options)
    return
  }
  if (block.seq <= ctx.held.handled) return // handled in the ledger's order already
  await inLedgerOrder(ctx, { before: block.seq, later }, options)
  await handle(ctx, block, { later }, options)
}

/**
 * Why a member's record can never be anchored in this run, or undefined: it is another
 * federation's, or signed so long before the charter that no block of this run may carry it
 * (none is dated before the charter's, and each within ANCHOR_SKEW_SECONDS of its record). No
 * copy will ever hold its block, so it is not waited for on its signer's share of asks.
 */
function neverThisRun (charter: SignedRecord<Charter> | undefined, jwt: string): ConclaveError | undefined {
  if (charter === undefined) return undefined
  const { record, issuedAt } = peekRecord(jwt)
  if (record?.federation !== charter.record.federation) return new WrongFederationError(`announced record is of federation ${record?.federation ?? '?'}, not ${charter.record.federation}`)
  if (issuedAt !== null && issuedAt < charter.issuedAt - 2 * ANCHOR_SKEW_SECONDS) return new RecordTimeMismatchError(`announced record was signed ${charter.issuedAt - issuedAt} s before the charter`)
  return undefined
}

/** Handles the blocks of my ledger I have not handled, in its order, up to (not including) position `before`, or all. */
async function inLedgerOrder (ctx: InboxContext, { before, later }: { before?: number, later?: Later }, options: StepOptions): Promise<number> {
  let applied = 0
  for await (const block of ctx.ledger.blocks({ ...options, from: ctx.held.handled + 1 })) {
    if (before !== undefined && block.seq >= before) break
    if (block.seq <= ctx.held.handled) continue
    if (await handle(ctx, block, { later }, options)) applied++
  }
  return applied
}

/**
 * Applies a block to my state (which checks it against the protocol) and reacts. A record
 * the protocol refuses is reported and dropped; anything else that goes wrong is a bug and
 * is thrown. Whether it was applied.
 */
async function handle (ctx: InboxContext, block: Block, { later }: { later?: Later }, options: StepOptions): Promise<boolean> {
  ctx.held.handled = Math.max(ctx.held.handled, block.seq)
  if (ctx.state.has(block.id)) return false
  // A checkpoint must match my own merge before it may move my global model.
  let ownMerge: GlobalModel | undefined
  let signed: SignedRecord
  try {
    signed = await ctx.timer.time('fetchVerify', () => ctx.state.apply(block, {
      ledger: ctx.ledger,
      beforeCommit: async ({ record }) => {
        if (record.type === 'checkpoint') ownMerge = await checkMerge(ctx, { checkpoint: record }, options)
      }
    }))
  } catch (err) {
    refused(ctx, block.id, err, options)
    return false
  }
  options.onProgress?.({ type: 'conclave:record:applied', detail: { block: block.id, type: signed.record.type, issuer: signed.issuer } })
  await actingOn(ctx, block.id, async () => react(ctx, { signed, block: block.id, ownMerge, later }, options))
  return true
}

function refused (ctx: InboxContext, block: BlockId, err: unknown, options: StepOptions): void {
  if (!(err instanceof ConclaveError)) throw err
  ctx.logger.warn(`${ctx.name} rejected block ${block}`, { error: err.name, reason: err.message })
  options.onProgress?.({ type: 'conclave:record:rejected', detail: { block, error: err } })
}

/** What I do on a record I applied: the record stands whatever befalls it; only what I would have done on it is missing (e.g. my vote when my ledger did not answer). */
async function actingOn (ctx: Pick<InboxContext, 'name' | 'logger'>, block: BlockId, act: () => Promise<void>): Promise<void> {
  try {
    await act()
  } catch (err) {
    if (!(err instanceof ConclaveError)) throw err
    ctx.logger.warn(`${ctx.name} applied block ${block} but could not act on it`, { error: err.name, reason: err.message })
  }
}

/**
 * Handles the ledger's blocks I have not, in its order. After a restart they are replayed
 * without reacting by new records; `react` handles each as if it had just come on the bus (a
 * live member catching up before it answers: the recorder still anchors what a decision calls for).
 */
export async function catchUp (ctx: InboxContext, { react }: { react: boolean }, options: StepOptions = {}): Promise<number> {
  ctx.held.replaying = !react
  try {
    const applied = await inLedgerOrder(ctx, {}, options)
    await recallSketches(ctx, options)
    return applied
  } finally {
    ctx.held.replaying = false
  }
}

/** What an applied record makes me do: hold the charter's model, judge a peer's proposal (if I am one of its judges), anchor a checkpoint, move to the next model. */
async function react (ctx: InboxContext, { signed, block, ownMerge, later }: { signed: SignedRecord, block: BlockId, ownMerge?: GlobalModel, later?: Later }, options: StepOptions): Promise<void> {
  const { record } = signed
  const { held, state } = ctx
  if (record.type === 'charter') {
    const weights = await fetchModel(ctx.store, record.initial, options)
    // Pinned, as the peers' Δw I fetch are (fetch-update.ts): my copy of the run starts from it.
    if (ctx.keepContent) await ctx.store.pin(record.initial.cid, options)
    held.global = { ref: record.initial, weights }
    if (ruleOf(termsFor(ctx)).needs.includes('initial')) held.initial = { weights }
  } else if (record.type === 'proposal' && held.replaying) {
    // What I sketched before the restart: my own proposals and those I judged, fetched once the replay is done (catchUp).
    const mine = signed.issuer === ctx.identity.did || state.judges(block).includes(ctx.identity.did)
    if (mine && termsFor(ctx).robustness !== undefined) recallSketch(held, state.proposals.get(block) as ProposalEntry)
  } else if (record.type === 'proposal') {
    const entry = state.proposals.get(block) as ProposalEntry
    // A Δw I neither judge nor combine with the ones I judge is not fetched at all (a committee's outsiders).
    const wanted = state.judges(block).includes(ctx.identity.did) || ruleOf(termsFor(ctx)).needs.includes('combined')
    if (later !== undefined && wanted) {
      // My autopilot judges it in my turn once its Δw and every earlier one's is fetched or given up, unless its round was
      // merged meanwhile; an agent judges when its model says, its evaluate call waiting for this fetch outside my turn (participant.ts).
      later(fetchAhead(ctx, entry, options), async o => { if (ctx.autoVote && record.round >= state.currentRound()) await actingOn(ctx, block, async () => judgeArrival(ctx, entry, o)) })
    } else if (ctx.autoVote) await judgeArrival(ctx, entry, options)
  } else if (record.type === 'decision' && !held.replaying && signed.issuer === ctx.identity.did && roundDecided(ctx, record.round)) {
    await recordCheckpoint(ctx, { round: record.round }, options)
  } else if (record.type === 'human-vote' && !held.replaying) {
    await confirmReaction(ctx, { block, record }, options)
  } else if (record.type === 'checkpoint' && ownMerge !== undefined) {
    held.global = { ref: record.model, ...ownMerge }
    held.own.delete(record.round)
    held.referenceScores.delete(record.round)
    held.combinations.delete(record.round)
    held.prepared.delete(record.round)
    held.merged.delete(record.round)
    // A merged round's Δw are on the store under their CIDs: memory stays flat however long the run.
    for (const id of state.rounds.get(record.round)?.proposals ?? []) {
      held.deltas.delete(id)
      held.unfetched.delete(id)
    }
    settleSketches(held, { round: record.round, merged: record.merged })
    options.onProgress?.({ type: 'conclave:checkpoint', detail: { round: record.round, model: record.model } })
  }
}

/**
 * The autopilot judges a proposal as it arrives; under a rule that judges an update against
 * its round (marginal), it judges the round's proposals once every member's is in. A round
 * a member stays silent in is judged when its proposal window closes (the round loop asks
 * the driver: autopilot's `proposalsClosed`), so waiting never outlasts the window.
 */
async function judgeArrival (ctx: InboxContext, entry: ProposalEntry, options: StepOptions): Promise<void> {
  const { state } = ctx
  if (!ruleOf(termsFor(ctx)).needs.includes('combined')) {
    if (state.judges(entry.block).includes(ctx.identity.did)) await judge(ctx, entry, options)
    return
  }
  const ids = state.rounds.get(entry.signed.record.round)?.proposals ?? []
  // Each update is judged against the round's combination: once every Δw fetched ahead is in (the last to come judges them all).
  if (ids.length < state.members.size || ctx.held.fetching.size > 0) return
  for (const id of ids) {
    const owed = state.proposals.get(id)
    if (owed !== undefined && state.judges(id).includes(ctx.identity.did) && owed.decision === undefined && !hasVoted(ctx, id)) await judge(ctx, owed, options)
  }
}

/** The autopilot: evaluate, then vote as the acceptance rule says. */
async function judge (ctx: InboxContext, entry: ProposalEntry, options: StepOptions): Promise<void> {
  if (ctx.held.unfetched.has(entry.block)) return // fetch-ahead said why
  const evaluation = await evaluate(ctx, { entry }, options)
  if (ctx.collusion !== undefined && ctx.conduct.attackAt(entry.signed.record.round) !== undefined) {
    const ally = ctx.collusion.some(i => ctx.state.charter?.record.members[i - 1] === entry.signed.issuer)
    const accept = ally && evaluation.unusable === undefined
    const measurement = evaluation.measurement === undefined ? undefined : forgedMeasurement(evaluation.measurement, accept)
    return vote(ctx, { entry, accept, measurement, decidedBy: POLICY }, options).then(() => undefined)
  }
  await vote(ctx, { entry, accept: evaluation.passes, decidedBy: POLICY }, options)
}
