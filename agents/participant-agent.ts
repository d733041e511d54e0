import { AsyncResource } from 'node:async_hooks'
import { setTimeout as pause } from 'node:timers/promises'
import { join } from 'node:path'
import type { BaseChatModel } from '@langchain/core/language_models/chat_models'
import { HumanMessage, RemoveMessage, type BaseMessage } from '@langchain/core/messages'
import { ConclaveError, ConfigError } from '../src/core/errors.ts'
import { RETRY_WAITS_S } from '../src/core/retry.ts'
import { silentLogger, type Logger } from '../src/core/logger.ts'
import { POLICY, type BlockId } from '../src/core/records.ts'
import { judgementOf } from '../src/federation/acceptance-terms.ts'
import { owesVote, unjudged, type Activity, type Decisions, type Driver, type DriverContext, type LlmCounts } from '../src/federation/driver.ts'
import type { Participant } from '../src/federation/participant.ts'
import { SerialQueue } from '../src/core/serial-queue.ts'
import type { Subscription } from '../src/transport/index.ts'
import { createChatModel, describeEvent, JsonToolChatModel, ProtocolPolicyChatModel, type AgentEvent } from '../src/llm/index.ts'
import { unrecordable } from '../src/llm/spec.ts'
import { AgentChat } from './agent-chat.ts'
import { heldAs, Pause, readPause, writePause } from './pause.ts'
import { stepLine } from './step-line.ts'
import { FileCheckpointSaver } from '../graphs/file-checkpointer.ts'
import { buildParticipantGraph } from '../graphs/participant.ts'
import { loadPrompt } from '../prompts/index.ts'
import { bindTools, PROTOCOL_TOOLS, type AgentTool, type BoundTool } from '../tools/index.ts'
import type { Judgement } from '../src/core/terms.ts'

export interface AgentOptions {
  /** policy, ollama:<model> or gguf:<path>. @default policy */
  llm?: string
  /** A ready chat model instead of `llm` (tests, custom providers). */
  model?: BaseChatModel
  /** Tools beyond the protocol's own (plugins). */
  plugins?: readonly AgentTool[]
  /** Most model steps per event. @default 8 */
  maxSteps?: number
  /** Longest one model call may take; no answer by then counts as an invalid one (retried, then the policy). @default 300 000 (5 min) */
  llmTimeoutMs?: number
  /** The system prompt's template file ({name}, {persona}, {judgement}). @default prompts/participant.md */
  prompt?: string
  /** Personas by agent name, each put in that agent's prompt. @default none */
  personas?: Readonly<Record<string, string>>
  /** Messages kept in the agent's memory between events. @default 60 */
  memory?: number
  seed?: number
  logger?: Logger
}

/**
 * A participant driven by a LangGraph agent. Events (a round opens, a peer proposes) wake
 * it; its ReAct graph decides which protocol tools to call; the participant enforces the
 * protocol whatever the model says. Its graph state is checkpointed to
 * `<dir>/memory.json` and the log beside it, so a killed agent restarted on the same
 * directory resumes its unfinished turn, and the ledger (not its memory) stops it from
 * voting twice.
 */
export class ParticipantAgent implements Driver {
  readonly participant: Participant
  readonly toolCalls: Record<string, number>
  readonly decisions: Decisions
  readonly llm: LlmCounts
  readonly toolNames: string[]
  /** The tools that declare they fit each kind of event (defineTool `events`): its message names them. */
  readonly #fitting: ReadonlyMap<AgentEvent['type'], string[]>
  readonly #pause: Pause
  #held: AgentEvent[] = []
  #pausedAt = ''
  /** The event whose turn is under way, if any; a restart while paused reads it from the pause file. */
  #current?: AgentEvent
  /** The event a pause found under way in the process before mine, if it left one. */
  #pausedTurn?: AgentEvent
  /** A turn a restart cut short while I was paused: taken up at !resume, not run under the pause. */
  #cutTurn = false
  /** Writes of the pause file, in order: a hold's write never lands after !resume removed it. */
  #saving: Promise<void> = Promise.resolve()
  readonly #queue = new SerialQueue()
  readonly #graph: ReturnType<typeof buildParticipantGraph>
  #chat?: AgentChat
  readonly #context: DriverContext
  /** How every run of the graph goes: my thread, stoppable by kill(), bounded, checkpointed as it goes. */
  readonly #run: { configurable: { thread_id: string }, signal: AbortSignal, recursionLimit: number, durability: 'sync' }
  readonly #memory: number
  /**
   * My conversation's message ids as my last turn left it (what trimming it needs), so a turn
   * does not read the whole conversation back from memory first; undefined until read once,
   * and after a turn that did not end.
   */
  #conversation?: Array<string | undefined>
  readonly #logger: Logger
  readonly #listener: (e: { block: BlockId, type: string, issuer: string }) => void
  readonly #abort: AbortController
  /** Ends the waits between turns on a vote owed (close). */
  readonly #closing = new AbortController()
  #chatSubscription?: Subscription
  /**
   * Runs in the context the agent was created in. An event often arrives while another
   * agent's graph is running (its anchor announces the proposal that wakes me); LangGraph
   * carries a run's config (checkpointer, thread) in async-local storage, so a turn started
   * there would run as that graph's subgraph, in its memory.
   */
  readonly #detached = AsyncResource.bind(<T>(fn: () => T): T => fn())
  #fault: unknown

  private constructor (participant: Participant, context: DriverContext, graph: ReturnType<typeof buildParticipantGraph>, tools: readonly BoundTool[], options: AgentOptions, counters: { llm: LlmCounts, toolCalls: Record<string, number>, decisions: Decisions }, abort: AbortController, pause: Pause) {
    this.#abort = abort
    this.#pause = pause
    this.participant = participant
    this.#context = context
    this.#graph = graph
    this.toolNames = tools.map(t => t.tool.name)
    const fitting = new Map<AgentEvent['type'], string[]>()
    for (const t of tools) for (const type of t.events ?? []) fitting.set(type, [...(fitting.get(type) ?? []), t.tool.name])
    this.#fitting = fitting
    this.llm = counters.llm
    this.toolCalls = counters.toolCalls
    this.decisions = counters.decisions
    this.#run = { configurable: { thread_id: participant.did }, signal: abort.signal, recursionLimit: 4 * (options.maxSteps ?? 8) + 8, durability: 'sync' }
    this.#memory = options.memory ?? 60
    this.#logger = options.logger ?? silentLogger
    this.#listener = ({ block, type, issuer }) => {
      // A proposal wakes only its judges: every peer, or the committee drawn for it.
      if (type !== 'proposal' || !participant.state.judges(block).includes(participant.did)) return
      const entry = participant.state.proposals.get(block)
      if (entry !== undefined) this.notify({ type: 'proposal', round: entry.signed.record.round, proposal: block, proposer: context.nameOf(issuer) })
    }
    participant.on('conclave:record:applied', this.#listener)
  }

  /**
   * Answers researchers in the federation's room (agents/agent-chat.ts says who answers what),
   * with the agent's own model over read-only tools; the chat policy when the model is the
   * protocol policy.
   */
  async listen (model: BaseChatModel, llmTimeoutMs?: number): Promise<void> {
    const p = this.participant
    this.#chat = await AgentChat.create({
      participant: p,
      ledger: this.#context.ledger,
      nameOf: this.#context.nameOf,
      plannedRounds: this.#context.rounds,
      // Live: what the ledger holds and I have not applied yet is handled as if it had just come on the bus.
      sync: () => p.catchUp({ react: true }),
      activity: () => ({ tools: this.toolNames, ...this.activity() }),
      control: { pause: () => this.#pauseNow(), resume: () => this.#resume(), propose: () => this.#propose(), paused: () => this.#pause.on }
    }, { model: model instanceof ProtocolPolicyChatModel ? undefined : model, llmTimeoutMs, logger: this.#logger })
    this.#chatSubscription = await this.#chat.listen(this.#context.bus, this.#context.room, this.#context.chat)
  }

  static async create (participant: Participant, context: DriverContext, options: AgentOptions = {}): Promise<ParticipantAgent> {
    const model = options.model ?? await createChatModel(options.llm ?? 'policy', { seed: options.seed })
    const decider = deciderOf(model)
    const counters = { llm: { calls: 0, valid: 0, retried: 0, fallback: 0 }, toolCalls: {} as Record<string, number>, decisions: {} as Decisions }
    const abort = new AbortController()
    const pause = new Pause(participant.name)
    const tools = bindTools([...PROTOCOL_TOOLS, ...(options.plugins ?? [])], { participant, ledger: context.ledger, nameOf: context.nameOf, signal: abort.signal, guard: pause.guard })
    const checkpointer = await FileCheckpointSaver.open(join(context.dir, 'memory.json'))
    const prompts = await systemPrompts(participant.name, options)
    const graph = buildParticipantGraph({
      model,
      fallback: new ProtocolPolicyChatModel(),
      tools,
      // Who decides a vote's accept is the charter's to say, not my config's: read at each step, once the charter is applied.
      systemPrompt: () => prompts[judgementOf(participant.state.charter?.record.acceptance)],
      maxSteps: options.maxSteps ?? 8,
      llmTimeoutMs: options.llmTimeoutMs,
      checkpointer,
      signal: abort.signal,
      paused: () => pause.on,
      decider,
      logger: options.logger,
      // Abstaining starves the quorum: a turn on a peer's proposal ends only once I voted on it.
      duty: event => event.type === 'proposal' && owed(participant, event.proposal)
        ? `you must vote on ${event.proposal} before ending this turn (evaluate it first if you have not)`
        : undefined,
      think: call => participant.timer.time('model', call),
      onStep: step => { (options.logger ?? silentLogger).info(stepLine(participant.name, step)) },
      ...counters
    })
    const agent = new ParticipantAgent(participant, context, graph, tools, options, counters, abort, pause)
    // A researcher's !pause outlives the process, and so does what it held: restarted, I stay paused until !resume.
    const paused = await readPause(agent.#pauseFile)
    pause.on = paused !== undefined
    agent.#held = paused?.held ?? []
    agent.#pausedAt = paused?.pausedAt ?? ''
    agent.#pausedTurn = paused?.turn
    await agent.listen(model, options.llmTimeoutMs)
    return agent
  }

  get paused (): boolean { return this.#pause.on }
  get busy (): boolean { return this.#queue.busy }
  get failure (): unknown { return this.#fault }

  async idle (): Promise<void> {
    await this.#queue.idle()
    if (this.#fault !== undefined) throw this.#fault
  }

  async openRound (round: number): Promise<void> {
    this.notify({ type: 'round-open', round })
  }

  /**
   * My model decides whether I train, but an update trained ahead is the one my turn would
   * train (same model, shard and seed), so starting it on a spare core costs only that core.
   */
  async prepareRound (round: number): Promise<void> {
    if (!this.#pause.on && !this.participant.hasProposed(round)) await this.participant.trainAhead(round)
  }

  /** Wakes the agent with an event (held while it is paused). */
  notify (event: AgentEvent): void {
    if (this.#pause.on) {
      this.#hold(event)
      return
    }
    this.#detached(() => { this.#queue.run(() => this.#turn(event)).catch((err: unknown) => { this.#fault ??= err }) })
  }

  /**
   * After a restart: finishes the turn the agent was in when it stopped, if any (paused, at
   * !resume: under the pause its every action would be refused and the turn lost), then hears
   * again of every open proposal it has not voted on. Those events were lost with the
   * process (queued behind that turn, or announced while it was down), and without the
   * votes they owed, the round would be decided differently from a run never stopped.
   */
  async resume (): Promise<boolean> {
    const state = await this.#graph.getState(this.#run)
    const unfinished = state.next.length > 0
    if (unfinished && this.#pause.on) this.#cutTurn = true
    else if (unfinished) await this.#finishCutTurn()
    // A turn that ended under the pause but died before holding its event: held now.
    else if (this.#pausedTurn !== undefined && this.#pause.on) this.#hold(this.#pausedTurn)
    this.#pausedTurn = undefined
    const owed = unjudged(this.participant)
    for (const entry of owed) {
      this.notify({ type: 'proposal', round: entry.signed.record.round, proposal: entry.block, proposer: this.#context.nameOf(entry.signed.issuer) })
    }
    return unfinished || owed.length > 0
  }

  /** Answers a researcher's message (a question or a `!command`) from the ledger as it stands. */
  async chat (body: string): Promise<string> {
    if (this.#chat === undefined) throw new TypeError(`${this.participant.name} is not listening`)
    return this.#chat.answer(body)
  }

  activity (): Activity {
    return { toolCalls: { ...this.toolCalls }, llm: { ...this.llm }, decisions: structuredClone(this.decisions) }
  }

  /** Stops at once, abandoning any turn in flight (its last checkpoint stays on disk). */
  async kill (): Promise<void> {
    this.#abort.abort(new Error(`${this.participant.name} was stopped`))
    this.#stopListening()
    const memory = this.#graph.checkpointer
    if (memory instanceof FileCheckpointSaver) await memory.kill()
    await this.#saving.catch(() => undefined)
  }

  async close (): Promise<void> {
    this.#closing.abort()
    await this.#queue.idle().catch(() => undefined)
    this.#stopListening()
    const memory = this.#graph.checkpointer
    if (memory instanceof FileCheckpointSaver) await memory.close()
  }

  #stopListening (): void {
    this.participant.off('conclave:record:applied', this.#listener)
    this.#chatSubscription?.unsubscribe()
  }

  /**
   * A turn on the event; one on a peer's proposal that ended without the vote it owes (a
   * tool failed: kubo slow to answer, a ledger busy) is taken again after each of
   * RETRY_WAITS_S: otherwise the round waits out its window for a vote that never comes.
   * A pause holds the event for !resume: one queued when it came, or whose turn it cut short.
   */
  async #turn (event: AgentEvent): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.#pause.on) return this.#hold(event)
      this.#current = event
      try {
        await this.#once(event)
      } finally {
        this.#current = undefined
      }
      if (this.#pause.on) return this.#hold(event)
      if (event.type !== 'proposal' || this.#abort.signal.aborted || !owed(this.participant, event.proposal)) return
      const name = this.participant.name
      const seconds = RETRY_WAITS_S[attempt - 1]
      if (seconds === undefined) {
        this.#logger.warn(`${name}: gave up voting on ${event.proposal} after ${attempt} turns`)
        return
      }
      this.#logger.warn(`${name}: turn on ${event.proposal} ended without my vote; trying again in ${seconds} s`, { attempt })
      const stop = AbortSignal.any([this.#abort.signal, this.#closing.signal])
      await pause(seconds * 1000, undefined, { signal: stop }).catch(() => undefined)
      if (stop.aborted) return
    }
  }

  /** The turn a restart cut short, from its last checkpoint. */
  async #finishCutTurn (): Promise<void> {
    await this.#detached(() => this.#queue.run(async () => {
      this.#conversation = undefined
      await this.#graph.invoke(null, this.#run)
    }))
  }

  /**
   * Keeps an event for !resume, once, unless what it asks of me is done (my proposal anchored,
   * my vote cast); kept in the pause file too, so a restart does not lose it.
   */
  #hold (event: AgentEvent): void {
    const done = event.type === 'proposal' ? !owed(this.participant, event.proposal) : this.participant.hasProposed(event.round)
    // A killed agent holds nothing: its restarted self reads the pause file, and takes up the cut turn itself.
    if (done || this.#abort.signal.aborted || this.#held.some(e => heldAs(e) === heldAs(event))) return
    this.#held.push(event)
    this.#savePause().catch((err: unknown) => { this.#logger.warn(`${this.participant.name}: could not keep a held event in ${this.#pauseFile}`, { reason: String(err) }) })
  }

  /** The pause file as the pause stands now: written while paused (with what it holds), removed once resumed. */
  async #savePause (): Promise<void> {
    this.#saving = this.#saving.catch(() => undefined).then(async () => writePause(this.#pauseFile, this.#pause.on ? { pausedAt: this.#pausedAt, held: this.#held, turn: this.#current } : undefined))
    return this.#saving
  }

  async #once (event: AgentEvent): Promise<void> {
    if (this.#abort.signal.aborted) return
    const ids = this.#conversation ?? messageIds((await this.#graph.getState(this.#run)).values)
    this.#conversation = undefined
    const old = ids.slice(0, -this.#memory).flatMap(id => id === undefined ? [] : [new RemoveMessage({ id })])
    try {
      const after = await this.#graph.invoke({ messages: [...old, new HumanMessage(describeEvent({ ...event, distillable: this.#distillable() }, { fitting: this.#fitting.get(event.type) }))], steps: 0 }, this.#run)
      this.#conversation = messageIds(after)
    } catch (err) {
      if (this.#abort.signal.aborted) return
      if (!(err instanceof ConclaveError)) throw err
      this.#logger.warn(`${this.participant.name}: turn on ${event.type} failed`, { error: err.name, reason: err.message })
    }
  }

  /** Questions my teacher could still answer, as the agent should hear it now (not when the event was queued). */
  #distillable (): number | undefined {
    return this.participant.distillable > 0 ? this.participant.distillable : undefined
  }

  /** Where a pause is kept while it lasts (my directory; no secret in it). */
  get #pauseFile (): string { return join(this.#context.dir, 'paused.json') }

  /** Pauses at once; answers once the tool call under way, if any, has ended, since nothing is done after that. */
  async #pauseNow (): Promise<string> {
    this.#pause.on = true
    this.#pausedAt = new Date().toISOString()
    await this.#savePause()
    await this.#pause.settled()
    return `${this.participant.name} paused: I will not propose or vote until !resume.`
  }

  async #resume (): Promise<string> {
    this.#pause.on = false
    await this.#savePause()
    const cut = this.#cutTurn
    this.#cutTurn = false
    // The cut turn first: it is the oldest thing I owe, and the queue keeps the order.
    if (cut) this.#finishCutTurn().catch((err: unknown) => { this.#fault ??= err })
    const held = this.#held.splice(0)
    for (const e of held) this.notify(e)
    const owed = held.length + (cut ? 1 : 0)
    return `${this.participant.name} resumed${owed > 0 ? `, catching up on ${owed} events` : ''}.`
  }

  #propose (): string {
    const p = this.participant
    const round = p.state.currentRound()
    const already = (p.state.rounds.get(round)?.proposals ?? []).some(id => p.state.proposals.get(id)?.signed.issuer === p.did)
    if (already) return `I have already proposed an update for round ${round}.`
    if (this.#pause.on) return 'I am paused; !resume first.'
    this.notify({ type: 'round-open', round })
    return `Training and proposing an update for round ${round}.`
  }
}

function messageIds (values: { messages?: BaseMessage[] }): Array<string | undefined> {
  return (values.messages ?? []).map(m => m.id)
}

/** The proposal's event owes my vote (a proposal event names one I hold: I was woken for it). */
function owed (participant: Participant, proposal: BlockId): boolean {
  const entry = participant.state.proposals.get(proposal)
  return entry !== undefined && owesVote(participant, entry)
}

/**
 * The model's name on the record: its spec (`gguf:<file name>`, `ollama:<model>`), or `policy`.
 * One no vote can hold is refused before the agent starts, not at its first vote.
 */
function deciderOf (model: BaseChatModel): string {
  if (model instanceof ProtocolPolicyChatModel) return POLICY
  const served = (model as { model?: unknown }).model // ChatOllama and most providers name their model here
  const name = model instanceof JsonToolChatModel ? model.completer.name : `${model._llmType()}${typeof served === 'string' ? `:${served}` : ''}`
  const problem = unrecordable(name)
  if (problem !== undefined) throw new ConfigError(problem)
  return name
}

/** What each judgement mode tells the model it decides. */
const JUDGEMENT_GUIDE: Record<Judgement, string> = {
  rule: 'Your accept must be what the federation\'s acceptance rule says (`passesRule`); your rationale says why it holds.',
  model: 'Accept or reject is your own judgement: weigh the measured change on your validation data, the update\'s geometry and the proposer\'s record. `passesRule` is the federation\'s rule of thumb, not binding; say in your rationale why you decided as you did.',
  guarded: 'Accept or reject is your judgement, within the rule: you cannot accept an update that fails it (`passesRule` false), and you may reject one that passes when the evaluation gives you reason; say why in your rationale.'
}

/** The agent's system prompt under each judgement mode: its template, its name, its persona and what the mode lets it decide. */
async function systemPrompts (name: string, options: AgentOptions): Promise<Record<Judgement, string>> {
  const persona = options.personas?.[name]
  const prompt = async (judgement: Judgement): Promise<string> => {
    const text = await loadPrompt(options.prompt === undefined ? 'participant' : { path: options.prompt }, {
      name,
      persona: persona === undefined ? '' : `Your persona: ${persona}`,
      judgement: JUDGEMENT_GUIDE[judgement]
    })
    return persona === undefined || text.includes(persona) ? text : `${text}\n\nYour persona: ${persona}`
  }
  return { rule: await prompt('rule'), model: await prompt('model'), guarded: await prompt('guarded') }
}
