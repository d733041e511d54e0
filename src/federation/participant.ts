import { EventEmitter } from 'node:events'
import { SelfVoteError, UnknownProposalError } from '../core/errors.ts'
import { silentLogger } from '../core/logger.ts'
import type { AbortOptions } from '../core/options.ts'
import type { BlockId, Did, ModelRef, Record, Vote } from '../core/records.ts'
import { SerialQueue } from '../core/serial-queue.ts'
import type { Identity } from '../identity/index.ts'
import { judgeOf } from '../ml/task.ts'
import type { Weights } from '../ml/weights.ts'
import type { Subscription } from '../transport/index.ts'
import { ruleOf, termsOf } from './acceptance-terms.ts'
import { Conduct } from './attacks.ts'
import { freshHoldings, termsFor, type Draft, type Evaluation, type ParticipantEvents, type ParticipantInit, type StepContext, type StepOptions } from './context.ts'
import type { Distillation } from './distill.ts'
import { PhaseTimer } from './phases.ts'
import { FederationState, type ProposalEntry } from './state.ts'
import { anchorRecord } from './steps/anchor.ts'
import { closeRound, isMyTurn } from './steps/close-round.ts'
import { distill, distillable, teacherUse, undistilled, type TeacherUse } from './steps/distill.ts'
import { evaluate } from './steps/evaluate.ts'
import { catchUp, receive, type Later } from './steps/inbox.ts'
import { proposeDraft } from './steps/propose.ts'
import { publishDraft } from './steps/publish.ts'
import { scoreModel, type ModelScore } from './steps/score.ts'
import { hasProposed, train, trainAhead } from './steps/train.ts'
import { hasVoted, vote, type VoteParams } from './steps/vote.ts'
import { recordReaction } from './steps/human-vote.ts'

export type { Draft, Evaluation, ParticipantEvents, ParticipantInit } from './context.ts'

/**
 * One member of a federation. It learns of records only through the bus, checks each
 * against the ledger and the protocol (FederationState), judges peers' updates on its own
 * validation data, and derives every decision and merge itself. Each protocol step is a
 * module of its own under steps/; this class runs them one at a time and reports what
 * they did as events.
 */
export class Participant extends EventEmitter<ParticipantEvents> {
  readonly name: string
  readonly identity: Identity
  readonly state = new FederationState()
  readonly timer: PhaseTimer
  readonly #ctx: StepContext
  readonly #queue: SerialQueue
  /** How my records' reactions wait for what they need; absent: in the record's own turn. */
  readonly #later: Later | undefined
  #fault: unknown
  #subscription?: Subscription

  constructor (init: ParticipantInit) {
    super()
    this.name = init.name
    this.identity = init.identity
    this.#queue = init.queue ?? new SerialQueue()
    this.timer = init.timer ?? new PhaseTimer()
    const { name, identity, store, ledger, bus, room, task, teacher, clock } = init
    this.#later = init.fetchAhead === false ? undefined : this.#deferred
    this.#ctx = {
      name, identity, store, ledger, bus, room, task, teacher,
      terms: init.terms ?? termsOf({ acceptance: 'tolerance', voteScale: 'full' }, judgeOf(task)),
      conduct: new Conduct(task, init.attack, init.seed),
      collusion: init.attack?.kind === 'collude' ? init.allies ?? [] : undefined,
      autoVote: init.autoVote !== false,
      keepContent: init.keepContent !== false,
      state: this.state,
      timer: this.timer,
      shared: init.shared,
      logger: init.logger ?? silentLogger,
      now: () => Math.floor(clock?.() ?? Date.now() / 1000),
      held: freshHoldings(init.shard, init.dir)
    }
  }

  get did (): Did { return this.identity.did }
  get globalModel (): { ref: ModelRef, weights: Weights } | undefined { return this.#ctx.held.global }
  get draft (): Draft | undefined { return this.#ctx.held.draft }
  /** How many Δw and own merges this member holds in memory (only the open round's: the rest are on the store), and the rounds it holds sketches of, ascending. */
  get holding (): { updates: number, merges: number, sketchRounds: number[] } {
    const { deltas, merged, sketches } = this.#ctx.held
    return { updates: deltas.size, merges: merged.size, sketchRounds: [...new Set(sketches.map(s => s.round))].sort((a, b) => a - b) }
  }

  async start (): Promise<void> {
    this.#subscription = await this.#ctx.bus.subscribe(this.#ctx.room, (message, delivery) => {
      if (message.kind === 'reaction') return this.#handle(this.#run(o => recordReaction(this.#ctx, message, { ...o, later: this.#deferred })))
      if (message.kind !== 'record') return
      const announced = { ...message, from: delivery?.from }
      // A block not here yet is waited for off my queue; its record is handled in turn once it comes (or the wait ends).
      const defer = (arrival: Promise<unknown>): void => { this.#handle(arrival.then(async () => this.#run(o => receive(this.#ctx, { ...announced, later: this.#later }, o)))) }
      this.#handle(this.#run(o => receive(this.#ctx, { ...announced, defer, later: this.#later }, o)))
    }, { kinds: ['record', 'reaction'] })
  }

  /** What a record has me do once something comes (a peer's Δw): in my turn then, not waited for in this one. */
  #deferred: Later = (arrival, then) => { this.#handle(arrival.then(async () => this.#run(then))) }

  /** A bug (not a ConclaveError) in handling a message must not vanish as an unhandled rejection: idle() rethrows it. */
  #handle (handling: Promise<void>): void {
    handling.catch((err: unknown) => { this.#fault ??= err })
  }

  stop (): void { this.#subscription?.unsubscribe() }

  /** True while received messages wait to be handled. */
  get busy (): boolean { return this.#queue.busy }

  /** Resolves once every message received so far has been handled (what waits for a block or a Δw to come may still be waiting). */
  async idle (): Promise<void> {
    await this.#queue.idle()
    if (this.#fault !== undefined) throw this.#fault
  }

  /** Resolves once every peer's Δw fetched ahead of judging so far is held or given up; the proposals whose Δw my store gave me in no try. */
  async fetchedAhead (): Promise<ReadonlySet<BlockId>> {
    await this.#ctx.held.ahead
    return this.#ctx.held.unfetched
  }

  /** Signs a record, anchors it and announces it; returns its block id. */
  async publishRecord (record: Record, options: AbortOptions = {}): Promise<BlockId> {
    return anchorRecord(this.#ctx, record, options)
  }

  /** Trains, publishes Δw and proposes it: the three steps an agent may also take one by one. */
  async propose (round: number, options: AbortOptions = {}): Promise<BlockId> {
    await this.train(round, options)
    await this.publishDraft(options)
    return this.proposeDraft(options)
  }

  /** Whether my proposal for `round` is anchored and applied. */
  hasProposed (round: number): boolean { return hasProposed(this.#ctx, round) }

  /** Trains on the current global model and keeps the update as my draft for `round`. */
  async train (round: number, options: AbortOptions = {}): Promise<Draft> { return this.#run(o => train(this.#ctx, { round }, o), options) }

  /** Starts training my update for `round` in my turn, and returns without waiting for it (steps/train.ts says when it does). */
  async trainAhead (round: number): Promise<void> { return this.#run(async o => { trainAhead(this.#ctx, round, o) }) }

  /** Puts my draft's Δw in the content store (safetensors); its CID goes in the proposal. */
  async publishDraft (options: AbortOptions = {}): Promise<ModelRef> {
    return this.#run(o => publishDraft(this.#ctx, o), options)
  }

  /** Signs, anchors and announces a proposal of my published draft. */
  async proposeDraft (options: AbortOptions = {}): Promise<BlockId> {
    return this.#run(o => proposeDraft(this.#ctx, o), options)
  }

  /** My questions still without a teacher's answer (0 for tasks that learn from labels). */
  get undistilled (): number { return undistilled(this.#ctx) }

  /** My unanswered questions, if my budget still pays for one more answer; else 0. */
  get distillable (): number { return distillable(this.#ctx) }

  /** What my teacher cost so far (undefined: no teacher). */
  get teacherUse (): TeacherUse | undefined { return teacherUse(this.#ctx) }

  /** What is left of my teacher budget, in tokens (Infinity: no cap; undefined: no teacher). */
  get teacherBudget (): number | undefined { return this.#ctx.teacher?.cache.remaining }

  /** Asks my teacher about my unanswered questions, validation ones first, up to `limit` or the budget. */
  async distill (options: { limit?: number } & AbortOptions = {}): Promise<Distillation> {
    return this.#run(o => distill(this.#ctx, { limit: options.limit }, o), options)
  }

  /** My evaluation of a proposal, if I made one. */
  evaluation (proposal: BlockId): Evaluation | undefined { return this.#ctx.held.evaluations.get(proposal) }

  /** Whether I voted on a proposal: anchored and applied, or just cast by me and not yet back from the bus. */
  hasVoted (proposal: BlockId): boolean { return hasVoted(this.#ctx, proposal) }

  /** My vote on a proposal, as anchored, if I cast one. */
  myVote (proposal: BlockId): Vote | undefined {
    return this.state.proposals.get(proposal)?.votes.get(this.did)?.signed.record
  }

  /** Fetches a peer's Δw, checks it, and measures global + Δw against global on my validation data. */
  async evaluate (proposal: BlockId, options: AbortOptions = {}): Promise<Evaluation> {
    // Its Δw, if being fetched ahead, comes outside my turn (steps/fetch-ahead.ts); under a rule that judges the round's combination, every one fetched ahead so far.
    const { held } = this.#ctx
    await (ruleOf(termsFor(this.#ctx)).needs.includes('combined') ? held.ahead : held.fetching.get(proposal))
    return this.#run(o => evaluate(this.#ctx, { entry: this.#peerProposal(proposal) }, o), options)
  }

  /** Casts my vote (never on my own proposal; see steps/vote.ts for the rest of the rules, and who decided). */
  async vote (proposal: BlockId, accept: boolean, reason?: string, options: AbortOptions & Pick<VoteParams, 'decidedBy' | 'judgement'> = {}): Promise<BlockId> {
    return this.#run(o => vote(this.#ctx, { entry: this.#peerProposal(proposal), accept, reason, decidedBy: options.decidedBy, judgement: options.judgement }, o), options)
  }

  /** Applies what the ledger holds and I have not: replayed quietly (after a restart), or as if it came on the bus (`react`: before answering live). */
  async catchUp (options: AbortOptions & { react?: boolean } = {}): Promise<number> {
    return this.#run(o => catchUp(this.#ctx, { react: options.react === true }, o), options)
  }

  /** My judge's score of a stored model (a checkpoint) on my validation examples. */
  async score (model: ModelRef, options: AbortOptions = {}): Promise<ModelScore> { return this.#run(o => scoreModel(this.#ctx, { model }, o), options) }

  /** Called by the round loop when the validation window closes (the round's recorder anchors its records), and as the standby of `rank` gets its turn. */
  async closeRound (round: number, options: AbortOptions & { rank?: number } = {}): Promise<void> {
    const rank = options.rank ?? 0
    return this.#run(async o => {
      // The recorder decides from every record its ledger holds, announced or not, as every peer and the audit will check
      // it; the others handle its decisions as they come (a member that stopped hearing the bus stays behind).
      if (isMyTurn(this.#ctx, round, rank)) await catchUp(this.#ctx, { react: true }, o)
      await closeRound(this.#ctx, { round, rank }, o)
    }, options)
  }

  /** Runs a step in my queue, its progress reported as my events. */
  async #run<T> (step: (options: StepOptions) => Promise<T>, options: AbortOptions = {}): Promise<T> {
    return this.#queue.run(() => step({ signal: options.signal, onProgress: ({ type, detail }) => { this.emit(type, detail as never) } }))
  }

  #peerProposal (proposal: BlockId): ProposalEntry {
    const entry = this.state.proposals.get(proposal)
    if (entry === undefined) throw new UnknownProposalError(`no proposal ${proposal} in my state`)
    if (entry.signed.issuer === this.did) throw new SelfVoteError(`${proposal} is my own proposal`)
    return entry
  }
}
