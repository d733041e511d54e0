import { EventEmitter } from 'node:events'
import { ConclaveError, DerivationMismatchError, DuplicateVoteError, NotAnchoredError, ProtocolViolationError, SelfVoteError, UnknownProposalError } from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import type { BlockId, Checkpoint, Did, ModelRef, Record, RecordType, SignedRecord, Vote } from '../core/records.ts'
import type { Identity } from '../identity/index.ts'
import type { Ledger } from '../ledger/index.ts'
import { judgeOf, type Judge, type Shard, type Task } from '../ml/task.ts'
import { applyDelta, weightsSha256, type Weights } from '../ml/weights.ts'
import type { ContentStore } from '../storage/index.ts'
import type { CachedTeacher } from '../teachers/cache.ts'
import type { Bus, BusMessage, Subscription } from '../transport/index.ts'
import { fetchModel, putModel } from './content.ts'
import { localUpdate, poisonShard, type Attack } from './attacks.ts'
import { distil, type Distillation } from './distill.ts'
import { mergeRound, trustOf, type GlobalModel } from './merge.ts'
import { PhaseTimer } from './phases.ts'
import { SerialQueue } from '../core/serial-queue.ts'
import { FederationState, type ProposalEntry } from './state.ts'

export interface ParticipantInit {
  /** Human-facing name for logs, chat and reports, e.g. `agent-2`. */
  name: string
  identity: Identity
  store: ContentStore
  ledger: Ledger
  bus: Bus
  /** The federation's room on the bus. */
  room: string
  task: Task
  /** This participant's own data: it trains on `train` and judges peers on `val`. */
  shard: Shard
  /**
   * Where a task learned by distillation (qa) gets its targets: this participant's own
   * teacher, cached and budgeted. Its questions have no targets until it distils.
   */
  teacher?: { cache: CachedTeacher, /** Most tokens one answer may cost. */ maxTokens: number }
  /** Base seed of this participant's training; each round derives its own from it. */
  seed: number
  /** Accept a peer's update when it lowers my judge's score on my validation examples by at most this much. @default the task's judge's tolerance */
  tolerance?: number
  /** On top of `tolerance`, the share of my judge's gain since the initial model that an update may undo. @default the task's judge's */
  relativeTolerance?: number
  /** Score global + Δw (`full`) or global + Δw / N (`share`). @default full (the run config defaults to share) */
  voteScale?: 'full' | 'share'
  /** Unix-seconds clock, for record times. @default the system clock */
  clock?: () => number
  /** Where this participant's work runs, one task at a time. @default a queue of its own */
  queue?: SerialQueue
  /** Makes this participant hostile, for robustness experiments. @default honest */
  attack?: Attack
  /**
   * Judge and vote on every peer proposal as it arrives (the protocol autopilot). An
   * agent turns this off and decides itself, through evaluate() and vote(). @default true
   */
  autoVote?: boolean
  logger?: Logger
}

/** A trained update held locally until it is published and proposed. */
export interface Draft {
  round: number
  delta: Weights
  numSamples: number
  loss: number
  /** Set once the Δw is in the content store. */
  ref?: ModelRef
}

/** What I measured of a peer's update on my validation data, and what the protocol rule recommends. */
export interface Evaluation {
  proposal: BlockId
  proposer: Did
  round: number
  before: number
  after: number
  /** after − before, in the task's metric. */
  score: number
  /** Whether the update passes the federation's acceptance rule (never when it is unusable). */
  passes: boolean
  /** The measurement in words, for the vote's rationale. */
  summary: string
  /** Set when the update cannot be used at all (bad content, wrong shape…): the only vote is reject. */
  unusable?: string
}

export interface ParticipantEvents {
  'conclave:record:applied': [{ block: BlockId, type: RecordType, issuer: Did }]
  'conclave:record:rejected': [{ block: BlockId, error: ConclaveError }]
  'conclave:evaluated': [Evaluation]
  'conclave:vote:cast': [{ proposal: BlockId, accept: boolean, score: number, rationale: string }]
  'conclave:checkpoint': [{ round: number, model: ModelRef }]
}

/**
 * One member of a federation. It learns of records only through the bus, checks each
 * against the ledger and the protocol (FederationState), judges peers' updates on its own
 * validation data, and derives every decision and merge itself.
 */
export class Participant extends EventEmitter<ParticipantEvents> {
  readonly name: string
  readonly identity: Identity
  readonly state = new FederationState()
  readonly timer = new PhaseTimer()
  readonly #init: ParticipantInit
  readonly #deltas = new Map<BlockId, Weights>()
  readonly #evaluations = new Map<BlockId, Evaluation>()
  readonly #cast = new Set<BlockId>()
  #draft?: Draft
  /** True while catching up from the ledger: replayed records cause no new ones. */
  #replaying = false
  /** What a free-rider re-posts every round after its first. */
  readonly #memory: { first?: Weights } = {}
  /** My data; distilling gives its questions their teacher's answers. */
  #shard: Shard
  /** What I train on: my shard, or its poisoned copy if I am hostile (made when first needed, again after distilling). */
  #trainShard?: Shard
  /** Questions my teacher could not answer: not asked again. */
  readonly #unanswerable = new Set<string>()
  /** The recorder's own merge, so checking its checkpoint does not merge twice. */
  readonly #merged = new Map<number, GlobalModel>()
  readonly #logger: Logger
  /** The global model; `judged`: my judge's score of it on my validation examples, measured once per model. */
  #global?: GlobalModel & { ref: ModelRef, judged?: number }
  /** The charter's initial model, kept while a relative tolerance needs its score. */
  #initial?: { weights: Weights, judged?: number }
  readonly #queue: SerialQueue
  #fault: unknown
  #subscription?: Subscription

  constructor (init: ParticipantInit) {
    super()
    this.name = init.name
    this.identity = init.identity
    this.#init = init
    this.#logger = init.logger ?? silentLogger
    this.#queue = init.queue ?? new SerialQueue()
    this.#shard = init.shard
  }

  get did (): Did { return this.identity.did }
  get globalModel (): { ref: ModelRef, weights: Weights } | undefined { return this.#global }

  async start (): Promise<void> {
    this.#subscription = await this.#init.bus.subscribe(this.#init.room, (message) => { this.#enqueue(message) })
  }

  stop (): void {
    this.#subscription?.unsubscribe()
  }

  /** True while received messages wait to be handled. */
  get busy (): boolean { return this.#queue.busy }

  /** Resolves once every message received so far has been handled. */
  async idle (): Promise<void> {
    await this.#queue.idle()
    if (this.#fault !== undefined) throw this.#fault
  }

  /** Signs a record, anchors it and announces it; returns its block id. */
  async publishRecord (record: Record): Promise<BlockId> {
    const { identity, ledger, bus, room } = this.#init
    const jwt = await identity.sign(record, { now: this.#now() })
    // A vote is timed from its proposal's block, so it must descend from it.
    const block = await this.timer.time('anchor', () => ledger.append(jwt, { after: record.type === 'vote' ? record.proposal : undefined }))
    await this.timer.time('announce', () => bus.publish(room, { kind: 'record', block: block.id, jwt }))
    return block.id
  }

  /** Trains, publishes Δw and proposes it: the three steps an agent may also take one by one. */
  async propose (round: number): Promise<BlockId> {
    await this.train(round)
    await this.publishDraft()
    return this.proposeDraft()
  }

  /** Trains on the current global model and keeps the update as my draft for `round`. */
  async train (round: number): Promise<Draft> {
    return this.#queue.run(async () => {
      const global = this.#requireGlobal()
      if (this.#draft?.round === round) throw new ProtocolViolationError(`I already trained a draft for round ${round}: ${this.#draft.ref === undefined ? 'publish' : 'anchor'} it next`)
      const mine = (this.state.rounds.get(round)?.proposals ?? []).some(id => this.state.proposals.get(id)?.signed.issuer === this.did)
      if (mine) throw new ProtocolViolationError(`I already proposed an update for round ${round}`)
      const { task, seed, attack } = this.#init
      await this.#autoDistil()
      this.#requireTaught(this.#shard.train, 'training', 'distil first')
      this.#trainShard ??= poisonShard(task, this.#shard, attack, seed)
      const trainShard = this.#trainShard
      const update = await this.timer.time('train', () => localUpdate(task, trainShard, global.weights, { attack, seed, round, memory: this.#memory }))
      this.#draft = { round, delta: update.delta, numSamples: update.numSamples, loss: update.loss }
      return this.#draft
    })
  }

  /** Puts my draft's Δw in the content store (safetensors); its CID goes in the proposal. */
  async publishDraft (): Promise<ModelRef> {
    return this.#queue.run(async () => {
      const draft = this.#requireDraft()
      draft.ref ??= await this.timer.time('publish', () => putModel(this.#init.store, draft.delta))
      return draft.ref
    })
  }

  /** Signs, anchors and announces a proposal of my published draft. */
  async proposeDraft (): Promise<BlockId> {
    return this.#queue.run(async () => {
      const draft = this.#requireDraft()
      if (draft.ref === undefined) throw new ProtocolViolationError('publish the draft before proposing it: the proposal must point at stored content')
      const global = this.#requireGlobal()
      const block = await this.publishRecord({
        type: 'proposal',
        federation: this.#federation(),
        round: draft.round,
        base: global.ref.cid,
        delta: draft.ref,
        numSamples: draft.numSamples,
        metric: { name: 'loss', value: draft.loss }
      })
      this.#deltas.set(block, draft.delta)
      this.#draft = undefined
      return block
    })
  }

  get draft (): Draft | undefined { return this.#draft }

  /** My questions still without a teacher's answer (0 for tasks that learn from labels). */
  get undistilled (): number {
    const teaching = this.#init.task.teaching
    if (teaching === undefined) return 0
    return [...this.#shard.val, ...this.#shard.train].filter(e => !teaching.taught(e) && !this.#unanswerable.has(teaching.question(e))).length
  }

  /** My unanswered questions, if my budget still pays for one more answer; else 0. */
  get distillable (): number {
    const teacher = this.#init.teacher
    return teacher !== undefined && teacher.cache.remaining >= teacher.maxTokens ? this.undistilled : 0
  }

  /** What my teacher cost so far (undefined: no teacher). */
  get teacherUse (): { asked: number, cached: number, tokens: number, undistilled: number } | undefined {
    const teacher = this.#init.teacher?.cache
    return teacher === undefined ? undefined : { asked: teacher.misses, cached: teacher.hits, tokens: teacher.spent, undistilled: this.undistilled }
  }

  /** What is left of my teacher budget, in tokens (Infinity: no cap; undefined: no teacher). */
  get teacherBudget (): number | undefined { return this.#init.teacher?.cache.remaining }

  /**
   * Asks my teacher about my questions that have no answer yet, validation questions first
   * (I cannot judge peers without them), up to `limit` questions or until the budget is spent.
   */
  async distill (options: { limit?: number, signal?: AbortSignal } = {}): Promise<Distillation> {
    return this.#queue.run(() => this.#distil(options))
  }

  async #distil (options: { limit?: number, signal?: AbortSignal }): Promise<Distillation> {
    const { task, teacher } = this.#init
    if (task.teaching === undefined) throw new ProtocolViolationError(`the ${task.name} task learns from its labels: there is nothing to distil`)
    if (teacher === undefined) throw new ProtocolViolationError(`${this.name} has no teacher to distil from`)
    const { val, train } = this.#shard
    const { examples, report } = await this.timer.time('distill', () => distil(task.teaching as NonNullable<typeof task.teaching>, [...val, ...train], teacher.cache, {
      limit: options.limit, maxTokens: teacher.maxTokens, failed: this.#unanswerable, signal: options.signal
    }))
    this.#shard = { val: examples.slice(0, val.length), train: examples.slice(val.length) }
    this.#trainShard = undefined
    // My validation set changed, so the global model's score on it must be measured again.
    if (this.#global !== undefined) this.#global.judged = undefined
    if (this.#initial !== undefined) this.#initial.judged = undefined
    this.#logger.info(`${this.name} distilled`, { ...report })
    return report
  }

  /** Refuses work that needs some of `examples` answered by my teacher while none is (tasks learned by distillation). */
  #requireTaught (examples: unknown[], kind: string, remedy: string): void {
    const teaching = this.#init.task.teaching
    if (teaching !== undefined && !examples.some(e => teaching.taught(e))) throw new ProtocolViolationError(`none of my ${examples.length} ${kind} questions has a teacher's answer: ${remedy}`)
  }

  /** The autopilot distils everything it can before it first trains or judges; an agent decides itself. */
  async #autoDistil (): Promise<void> {
    if (this.#init.autoVote !== false && this.distillable > 0) await this.#distil({})
  }

  /** My evaluation of a proposal, if I made one. */
  evaluation (proposal: BlockId): Evaluation | undefined { return this.#evaluations.get(proposal) }

  /** Whether I voted on a proposal: anchored and applied, or just cast by me and not yet back from the bus. */
  hasVoted (proposal: BlockId): boolean {
    return this.#cast.has(proposal) || this.myVote(proposal) !== undefined
  }

  /** My vote on a proposal, as anchored, if I cast one. */
  myVote (proposal: BlockId): Vote | undefined {
    return this.state.proposals.get(proposal)?.votes.get(this.did)?.signed.record
  }

  /** Fetches a peer's Δw, checks it, and measures global + Δw against global on my validation data. */
  async evaluate (proposal: BlockId): Promise<Evaluation> {
    return this.#queue.run(() => this.#evaluate(this.#peerProposal(proposal)))
  }

  /**
   * Casts my vote. The protocol's rules hold whatever the caller (an agent's model) wants:
   * no vote without my evaluation, none on my own proposal, one per proposal, and an
   * update that cannot be used can only be rejected.
   */
  async vote (proposal: BlockId, accept: boolean, reason?: string): Promise<BlockId> {
    return this.#queue.run(() => this.#vote(this.#peerProposal(proposal), accept, reason))
  }

  /** Replays the ledger into my state (after a restart), without reacting to what I replay. */
  async catchUp (): Promise<number> {
    return this.#queue.run(async () => {
      let applied = 0
      this.#replaying = true
      try {
        for await (const block of this.#init.ledger.blocks()) {
          if (this.state.has(block.id)) continue
          await this.#handle(block.id, block.record)
          applied++
        }
      } finally {
        this.#replaying = false
      }
      return applied
    })
  }

  /**
   * Called by the round clock when the validation window closes. The round's recorder
   * anchors a decision per proposal, then (once they are applied) the checkpoint;
   * everyone else derives the same records and checks the recorder's against their own.
   */
  async closeRound (round: number): Promise<void> {
    return this.#queue.run(() => this.#closeRound(round))
  }

  async #closeRound (round: number): Promise<void> {
    if (this.state.recorder(round) !== this.did) return
    const open = (this.state.rounds.get(round)?.proposals ?? []).map(id => this.state.proposals.get(id)).filter(e => e !== undefined && e.decision === undefined)
    if (open.length === 0) return this.#recordCheckpoint(round)
    for (const entry of open) {
      if (entry === undefined) continue
      await this.publishRecord({ type: 'decision', federation: this.#federation(), round, proposal: entry.block, proposer: entry.signed.issuer, ...this.state.derive(entry.block) })
    }
  }

  async #recordCheckpoint (round: number): Promise<void> {
    const parent = this.#requireGlobal()
    const merged = await this.#merge(round)
    this.#merged.set(round, merged)
    const model = await this.timer.time('publish', () => putModel(this.#init.store, merged.weights))
    await this.publishRecord({ type: 'checkpoint', federation: this.#federation(), round, parent: parent.ref.cid, model, merged: this.state.accepted(round).map(p => p.block) })
  }

  #enqueue (message: BusMessage): void {
    if (message.kind !== 'record') return
    // A bug (not a ConclaveError) must not vanish as an unhandled rejection: idle() rethrows it.
    this.#queue.run(() => this.#handle(message.block, message.jwt)).catch((err: unknown) => { this.#fault ??= err })
  }

  /**
   * Applies an announced record. Its block is looked up without waiting: one that has not
   * arrived yet is waited for off my queue, so the records announced after it are handled
   * meanwhile, and its own record is handled in turn once it comes (or the wait ends).
   */
  async #handle (blockId: BlockId, jwt: string, waited = false): Promise<void> {
    if (this.state.has(blockId)) return // at-least-once delivery: seen it
    try {
      const block = await this.timer.time('fetchVerify', () => this.#init.ledger.get(blockId, { wait: false }))
      if (block === undefined && !waited) {
        // The lookup in turn reports whatever made the wait fail.
        const arrival = this.#init.ledger.get(blockId).catch(() => undefined)
        arrival.then(async () => this.#queue.run(() => this.#handle(blockId, jwt, true))).catch((err: unknown) => { this.#fault ??= err })
        return
      }
      if (block?.record !== jwt) throw new NotAnchoredError(`announced record is not what block ${blockId} anchors`)
      // A checkpoint must match my own merge before it may move my global model.
      let ownMerge: GlobalModel | undefined
      const signed = await this.timer.time('fetchVerify', () => this.state.apply(block, {
        ledger: this.#init.ledger,
        now: this.#now(),
        beforeCommit: async ({ record }) => {
          if (record.type === 'checkpoint') ownMerge = await this.#checkMerge(record)
        }
      }))
      this.emit('conclave:record:applied', { block: blockId, type: signed.record.type, issuer: signed.issuer })
      await this.#react(signed, blockId, ownMerge)
    } catch (err) {
      if (!(err instanceof ConclaveError)) throw err
      this.#logger.warn(`${this.name} rejected block ${blockId}`, { error: err.name, reason: err.message })
      this.emit('conclave:record:rejected', { block: blockId, error: err })
    }
  }

  async #react (signed: SignedRecord, block: BlockId, ownMerge?: GlobalModel): Promise<void> {
    const record = signed.record
    if (record.type === 'charter') {
      const weights = await fetchModel(this.#init.store, record.initial)
      this.#global = { ref: record.initial, weights }
      if (this.#relativeTolerance(judgeOf(this.#init.task)) > 0) this.#initial = { weights }
    } else if (record.type === 'proposal' && signed.issuer !== this.did && this.#init.autoVote !== false && !this.#replaying) {
      await this.#judge(this.state.proposals.get(block) as ProposalEntry)
    } else if (record.type === 'decision' && !this.#replaying && this.state.recorder(record.round) === this.did && this.#roundDecided(record.round)) {
      await this.#recordCheckpoint(record.round)
    } else if (record.type === 'checkpoint' && ownMerge !== undefined) {
      this.#global = { ref: record.model, ...ownMerge }
      this.emit('conclave:checkpoint', { round: record.round, model: record.model })
    }
  }

  /** The autopilot: evaluate, then vote as the acceptance rule says. */
  async #judge (entry: ProposalEntry): Promise<void> {
    const evaluation = await this.#evaluate(entry)
    await this.#vote(entry, evaluation.passes)
  }

  async #evaluate (entry: ProposalEntry): Promise<Evaluation> {
    const known = this.#evaluations.get(entry.block)
    if (known !== undefined) return known
    const global = this.#requireGlobal()
    await this.#autoDistil()
    const { task, store } = this.#init
    const shard = this.#shard
    // Without answers to my own validation questions I cannot judge, and must not reject for it.
    this.#requireTaught(shard.val, 'validation', 'distil before judging')
    const base = { proposal: entry.block, proposer: entry.signed.issuer, round: entry.signed.record.round }
    let evaluation: Evaluation
    try {
      const delta = await this.timer.time('fetchVerify', () => fetchModel(store, entry.signed.record.delta))
      const candidate = applyDelta(global.weights, delta, this.#init.voteScale === 'share' ? 1 / Math.max(1, this.state.members.size) : 1)
      const judge = judgeOf(task)
      const before = await this.#judged(global, judge)
      const after = await this.timer.time('evaluate', () => judge.score(candidate, shard.val))
      const score = after - before
      const allowed = await this.#allowance(judge, before)
      const passes = score >= -allowed
      this.#deltas.set(entry.block, delta)
      const summary = `${judge.name} on my ${shard.val.length} validation examples: ${before.toFixed(4)} → ${after.toFixed(4)} (${score >= 0 ? '+' : ''}${score.toFixed(4)}; may fall ${allowed.toFixed(4)})`
      evaluation = { ...base, before, after, score, passes, summary }
    } catch (err) {
      if (!(err instanceof ConclaveError)) throw err
      this.emit('conclave:record:rejected', { block: entry.block, error: err })
      evaluation = { ...base, before: Number.NaN, after: Number.NaN, score: 0, passes: false, summary: `cannot use this update: ${err.code}`, unusable: err.code }
    }
    this.#evaluations.set(entry.block, evaluation)
    this.emit('conclave:evaluated', evaluation)
    return evaluation
  }

  #relativeTolerance (judge: Judge<unknown>): number {
    return this.#init.relativeTolerance ?? judge.relativeTolerance ?? 0
  }

  /** How far an update may lower my judge's score from `before`, the global model's. */
  async #allowance (judge: Judge<unknown>, before: number): Promise<number> {
    const absolute = this.#init.tolerance ?? judge.tolerance
    const relative = this.#relativeTolerance(judge)
    if (relative === 0 || this.#initial === undefined) return absolute
    return absolute + relative * Math.max(0, before - await this.#judged(this.#initial, judge))
  }

  /** My judge's score of `model` on my validation examples, measured once until they change. */
  async #judged (model: { weights: Weights, judged?: number }, judge: Judge<unknown>): Promise<number> {
    model.judged ??= await this.timer.time('evaluate', () => judge.score(model.weights, this.#shard.val))
    return model.judged
  }

  async #vote (entry: ProposalEntry, accept: boolean, reason?: string): Promise<BlockId> {
    const evaluation = this.#evaluations.get(entry.block)
    if (evaluation === undefined) throw new ProtocolViolationError(`no vote without an evaluation: evaluate ${entry.block} first`)
    if (this.hasVoted(entry.block)) throw new DuplicateVoteError(`${this.name} already voted on ${entry.block}`)
    if (accept && evaluation.unusable !== undefined) throw new ProtocolViolationError(`${entry.block} cannot be accepted: ${evaluation.summary}`)
    const decision = accept ? 'accept' : 'reject'
    const rationale = `${evaluation.summary}; ${decision}${reason === undefined || reason.trim() === '' ? '' : ` — ${reason.trim()}`}`.slice(0, 1000)
    const score = Number.isFinite(evaluation.score) ? evaluation.score : 0
    const block = await this.timer.time('vote', () => this.publishRecord({
      type: 'vote', federation: this.#federation(), round: entry.signed.record.round, proposal: entry.block, accept, score, rationale
    }))
    this.#cast.add(entry.block)
    this.emit('conclave:vote:cast', { proposal: entry.block, accept, score, rationale })
    return block
  }

  #peerProposal (proposal: BlockId): ProposalEntry {
    const entry = this.state.proposals.get(proposal)
    if (entry === undefined) throw new UnknownProposalError(`no proposal ${proposal} in my state`)
    if (entry.signed.issuer === this.did) throw new SelfVoteError(`${proposal} is my own proposal`)
    return entry
  }

  #requireDraft (): Draft {
    if (this.#draft === undefined) throw new ProtocolViolationError(`${this.name} has no trained draft: train first`)
    return this.#draft
  }

  async #checkMerge (checkpoint: Checkpoint): Promise<GlobalModel> {
    const merged = this.#merged.get(checkpoint.round) ?? await this.#merge(checkpoint.round)
    const sha256 = weightsSha256(merged.weights)
    if (sha256 !== checkpoint.model.sha256) {
      throw new DerivationMismatchError(`checkpoint of round ${checkpoint.round} claims model ${checkpoint.model.sha256}, my merge of the accepted updates gives ${sha256}`)
    }
    return merged
  }

  /** The next global model as I derive it from the round's accepted proposals. */
  async #merge (round: number): Promise<GlobalModel> {
    const global = this.#requireGlobal()
    return this.timer.time('merge', async () => {
      const accepted = []
      for (const entry of this.state.accepted(round)) {
        const delta = this.#deltas.get(entry.block) ?? await fetchModel(this.#init.store, entry.signed.record.delta)
        accepted.push({ delta, numSamples: entry.signed.record.numSamples, trust: trustOf(entry) })
      }
      return mergeRound(global, accepted, this.state, round)
    })
  }

  #roundDecided (round: number): boolean {
    return (this.state.rounds.get(round)?.proposals ?? []).every(id => this.state.proposals.get(id)?.decision !== undefined)
  }

  #requireGlobal (): GlobalModel & { ref: ModelRef, judged?: number } {
    if (this.#global === undefined) throw new NotAnchoredError(`${this.name} has not seen the federation's charter yet`)
    return this.#global
  }

  #federation (): string {
    const charter = this.state.charter
    if (charter === undefined) throw new NotAnchoredError(`${this.name} has not seen the federation's charter yet`)
    return charter.record.federation
  }

  #now (): number {
    return Math.floor(this.#init.clock?.() ?? Date.now() / 1000)
  }
}
