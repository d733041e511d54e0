import { AsyncResource } from 'node:async_hooks'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import type { BaseChatModel } from '@langchain/core/language_models/chat_models'
import { HumanMessage, RemoveMessage, type BaseMessage } from '@langchain/core/messages'
import { ConclaveError } from '../src/core/errors.ts'
import { silentLogger, type Logger } from '../src/core/logger.ts'
import type { BlockId } from '../src/core/records.ts'
import { unjudged, type Driver, type DriverContext, type LlmCounts } from '../src/federation/driver.ts'
import type { Participant } from '../src/federation/participant.ts'
import { SerialQueue } from '../src/core/serial-queue.ts'
import type { Subscription } from '../src/transport/index.ts'
import { createChatModel, describeEvent, ProtocolPolicyChatModel, type AgentEvent } from '../src/llm/index.ts'
import { buildChatGraph, stripMention } from '../graphs/chat.ts'
import { ChatGate } from './chat-gate.ts'
import { stepLine } from './step-line.ts'
import { FileCheckpointSaver } from '../graphs/file-checkpointer.ts'
import { buildParticipantGraph } from '../graphs/participant.ts'
import { loadPrompt } from '../prompts/index.ts'
import { bindTools, PROTOCOL_TOOLS, short, type AgentTool } from '../tools/index.ts'

export interface AgentOptions {
  /** policy, ollama:<model> or gguf:<path>. @default policy */
  llm?: string
  /** A ready chat model instead of `llm` (tests, custom providers). */
  model?: BaseChatModel
  /** Tools beyond the protocol's own (plugins). */
  plugins?: readonly AgentTool[]
  /** Most model steps per event. @default 8 */
  maxSteps?: number
  /** Messages kept in the agent's memory between events. @default 60 */
  memory?: number
  seed?: number
  logger?: Logger
}

/**
 * A participant driven by a LangGraph agent. Events (a round opens, a peer proposes) wake
 * it; its ReAct graph decides which protocol tools to call; the participant enforces the
 * protocol whatever the model says. Its graph state is checkpointed to
 * `<dir>/memory.json`, so a killed agent restarted on the same directory resumes its
 * unfinished turn, and the ledger (not its memory) stops it from voting twice.
 */
export class ParticipantAgent implements Driver {
  readonly participant: Participant
  readonly toolCalls: Record<string, number>
  readonly llm: LlmCounts
  readonly toolNames: string[]
  #paused = false
  readonly #held: AgentEvent[] = []
  readonly #queue = new SerialQueue()
  readonly #graph: ReturnType<typeof buildParticipantGraph>
  readonly #chat: ReturnType<typeof buildChatGraph>
  readonly #context: DriverContext
  /** How every run of the graph goes: my thread, stoppable by kill(), bounded, checkpointed as it goes. */
  readonly #run: { configurable: { thread_id: string }, signal: AbortSignal, recursionLimit: number, durability: 'sync' }
  readonly #memory: number
  readonly #logger: Logger
  readonly #listener: (e: { block: BlockId, type: string, issuer: string }) => void
  readonly #abort: AbortController
  #chatSubscription?: Subscription
  /**
   * Runs in the context the agent was created in. An event often arrives while another
   * agent's graph is running (its anchor announces the proposal that wakes me); LangGraph
   * carries a run's config (checkpointer, thread) in async-local storage, so a turn started
   * there would run as that graph's subgraph, in its memory.
   */
  readonly #detached = AsyncResource.bind(<T>(fn: () => T): T => fn())
  #fault: unknown

  private constructor (participant: Participant, context: DriverContext, graph: ReturnType<typeof buildParticipantGraph>, toolNames: string[], options: AgentOptions, counters: { llm: LlmCounts, toolCalls: Record<string, number> }, abort: AbortController) {
    this.#abort = abort
    this.participant = participant
    this.#context = context
    this.#graph = graph
    this.toolNames = toolNames
    this.llm = counters.llm
    this.toolCalls = counters.toolCalls
    this.#run = { configurable: { thread_id: participant.did }, signal: abort.signal, recursionLimit: 4 * (options.maxSteps ?? 8) + 8, durability: 'sync' }
    this.#memory = options.memory ?? 60
    this.#logger = options.logger ?? silentLogger
    this.#chat = buildChatGraph({ command: (n, a) => this.#command(n, a), question: q => this.#question(q) })
    this.#listener = ({ block, type, issuer }) => {
      // A proposal wakes only its judges: every peer, or the committee drawn for it.
      if (type !== 'proposal' || !participant.state.judges(block).includes(participant.did)) return
      const entry = participant.state.proposals.get(block)
      if (entry !== undefined) this.notify({ type: 'proposal', round: entry.signed.record.round, proposal: block, proposer: context.nameOf(issuer) })
    }
    participant.on('conclave:record:applied', this.#listener)
  }

  /**
   * Listens for researchers on the federation's bus: a chat message that mentions me
   * (`@agent-2 …`), or a bare `!command` meant for every agent, gets my answer as a reply.
   * Commands that act come only from those who may steer (the run's researchers and the
   * members); everyone gets at most so many answers per window (chat-gate.ts). A refusal or a
   * request to wait, for a message meant for every agent, comes from the founder alone.
   */
  async listen (): Promise<void> {
    const me = this.participant.name
    const { bus, room } = this.#context
    const gate = new ChatGate(this.#context.chat)
    this.#chatSubscription = await bus.subscribe(room, (message) => {
      if (message.kind !== 'chat' || [me, this.participant.did, bus.sender].includes(message.from)) return
      const mentioned = new RegExp(`(^|\\s)@${me}\\b`).test(message.body)
      const broadcast = message.body.trim().startsWith('!') && !/(^|\s)@agent-\d+\b/.test(message.body)
      if (!mentioned && !broadcast) return
      const text = stripMention(message.body)
      const command = text.startsWith('!') ? text.slice(1).trim().split(/\s+/)[0]?.toLowerCase() : undefined
      const admission = gate.admit(message.from, command)
      if (admission === 'ignore' || (admission !== 'answer' && !mentioned && !this.#foundedBy(this.participant.did))) return
      const answer = admission === 'answer'
        ? this.chat(message.body, message.from)
        : Promise.resolve(admission === 'refuse'
          ? `${me}: sorry, I take !${command} only from this federation's researchers. You can still ask me questions, or !status.`
          : `${me}: you have sent me ${this.#context.chat.limit.messages} messages within ${this.#context.chat.limit.seconds} s; I will answer again once that window has room.`)
      void answer
        .then(body => bus.publish(room, { kind: 'chat', from: me, body: body.slice(0, 8000), inReplyTo: message.id, id: randomUUID() }))
        .catch((err: unknown) => { this.#logger.warn(`${me}: could not answer chat`, { error: (err as Error).message }) })
    })
  }

  /** Whether `did` founded the federation (anchored its charter): it speaks for every agent. */
  #foundedBy (did: string): boolean {
    return this.participant.state.charter?.record.members[0] === did
  }

  static async create (participant: Participant, context: DriverContext, options: AgentOptions = {}): Promise<ParticipantAgent> {
    const model = options.model ?? await createChatModel(options.llm ?? 'policy', { seed: options.seed })
    const counters = { llm: { calls: 0, valid: 0, retried: 0, fallback: 0 }, toolCalls: {} as Record<string, number> }
    const abort = new AbortController()
    const tools = bindTools([...PROTOCOL_TOOLS, ...(options.plugins ?? [])], { participant, ledger: context.ledger, nameOf: context.nameOf, signal: abort.signal })
    const graph = buildParticipantGraph({
      model,
      fallback: new ProtocolPolicyChatModel(),
      tools,
      systemPrompt: await loadPrompt('participant', { name: participant.name }),
      maxSteps: options.maxSteps ?? 8,
      checkpointer: await FileCheckpointSaver.open(join(context.dir, 'memory.json')),
      signal: abort.signal,
      // Abstaining starves the quorum: a turn on a peer's proposal ends only once I voted on it.
      duty: event => event.type === 'proposal' && !participant.hasVoted(event.proposal)
        ? `you must vote on ${event.proposal} before ending this turn (evaluate it first if you have not)`
        : undefined,
      think: call => participant.timer.time('model', call),
      onStep: step => { (options.logger ?? silentLogger).info(stepLine(participant.name, step)) },
      ...counters
    })
    const agent = new ParticipantAgent(participant, context, graph, tools.map(t => t.name), options, counters, abort)
    await agent.listen()
    return agent
  }

  get paused (): boolean { return this.#paused }
  get busy (): boolean { return this.#queue.busy }

  async idle (): Promise<void> {
    await this.#queue.idle()
    if (this.#fault !== undefined) throw this.#fault
  }

  async openRound (round: number): Promise<void> {
    this.notify({ type: 'round-open', round })
  }

  /** Wakes the agent with an event (held while it is paused). */
  notify (event: AgentEvent): void {
    if (this.#paused) {
      this.#held.push(event)
      return
    }
    this.#detached(() => { this.#queue.run(() => this.#turn(event)).catch((err: unknown) => { this.#fault ??= err }) })
  }

  /**
   * After a restart: finishes the turn the agent was in when it stopped, if any, then hears
   * again of every open proposal it has not voted on. Those events were lost with the
   * process (queued behind that turn, or announced while it was down), and without the
   * votes they owed, the round would be decided differently from a run never stopped.
   */
  async resume (): Promise<boolean> {
    const state = await this.#graph.getState(this.#run)
    const unfinished = state.next.length > 0
    if (unfinished) await this.#detached(() => this.#queue.run(() => this.#graph.invoke(null, this.#run)))
    const owed = unjudged(this.participant)
    for (const entry of owed) {
      this.notify({ type: 'proposal', round: entry.signed.record.round, proposal: entry.block, proposer: this.#context.nameOf(entry.signed.issuer) })
    }
    return unfinished || owed.length > 0
  }

  /** Answers a researcher's message from the agent's state and the ledger. */
  async chat (body: string, from = 'researcher'): Promise<string> {
    const result = await this.#detached(() => this.#chat.invoke({ from, body: stripMention(body), answer: '' }))
    return result.answer
  }

  activity (): { toolCalls: Record<string, number>, llm: LlmCounts } {
    return { toolCalls: { ...this.toolCalls }, llm: { ...this.llm } }
  }

  /** Stops at once, abandoning any turn in flight (its last checkpoint stays on disk). */
  kill (): void {
    this.#abort.abort(new Error(`${this.participant.name} was stopped`))
    this.#stopListening()
  }

  async close (): Promise<void> {
    await this.#queue.idle().catch(() => undefined)
    this.#stopListening()
  }

  #stopListening (): void {
    this.participant.off('conclave:record:applied', this.#listener)
    this.#chatSubscription?.unsubscribe()
  }

  async #turn (event: AgentEvent): Promise<void> {
    if (this.#abort.signal.aborted) return
    const before = await this.#graph.getState(this.#run)
    const old = ((before.values.messages ?? []) as BaseMessage[]).slice(0, -this.#memory).flatMap(m => m.id === undefined ? [] : [new RemoveMessage({ id: m.id })])
    try {
      await this.#graph.invoke({ messages: [...old, new HumanMessage(describeEvent({ ...event, distillable: this.#distillable() }))], steps: 0 }, this.#run)
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

  async #command (name: string, args: string): Promise<string> {
    const p = this.participant
    switch (name) {
      case 'status': {
        const s = p.state
        const round = s.charter === undefined ? 0 : s.currentRound()
        const mine = [...s.proposals.values()].filter(e => e.signed.issuer === p.did)
        const votes = [...s.proposals.values()].filter(e => e.votes.has(p.did)).length
        return `${p.name}: round ${round} open${this.#paused ? ' (I am paused)' : ''}; global model ${p.globalModel?.ref.sha256.slice(0, 12) ?? 'none'} from round ${s.global?.round ?? 0}; ` +
          `${mine.length} proposals of mine (${mine.filter(e => e.decision?.record.accepted === true).length} accepted), ${votes} votes cast; ` +
          `model: ${this.llm.calls} calls, ${this.llm.valid} valid, ${this.llm.retried} retried, ${this.llm.fallback} fallbacks.`
      }
      case 'tools': return `My tools: ${this.toolNames.join(', ')}.`
      case 'pause':
        this.#paused = true
        return `${p.name} paused: I will not propose or vote until !resume.`
      case 'resume': {
        this.#paused = false
        const held = this.#held.splice(0)
        for (const e of held) this.notify(e)
        return `${p.name} resumed${held.length > 0 ? `, catching up on ${held.length} events` : ''}.`
      }
      case 'propose': {
        const round = p.state.currentRound()
        const already = (p.state.rounds.get(round)?.proposals ?? []).some(id => p.state.proposals.get(id)?.signed.issuer === p.did)
        if (already) return `I have already proposed an update for round ${round}.`
        if (this.#paused) return 'I am paused; !resume first.'
        this.notify({ type: 'round-open', round })
        return `Training and proposing an update for round ${round}.`
      }
      default: return `Unknown command !${name}${args === '' ? '' : ` ${args}`}. Commands: !status, !tools, !propose, !pause, !resume; or ask me why I voted as I did.`
    }
  }

  /** "why did you reject agent-3's update?", "why did you accept <block id>?" */
  async #question (text: string): Promise<string> {
    const p = this.participant
    const entries = [...p.state.proposals.values()]
    const byId = entries.filter(e => text.includes(e.block) || text.split(/[^\w:-]+/).some(w => w.length >= 8 && e.block.startsWith(w)))
    const name = /\bagent-\d+\b/.exec(text)?.[0]
    const round = Number(/\bround\s+(\d+)/i.exec(text)?.[1] ?? Number.NaN)
    const targets = byId.length > 0
      ? byId
      : entries.filter(e => name !== undefined && this.#context.nameOf(e.signed.issuer) === name && (Number.isNaN(round) || e.signed.record.round === round) && e.votes.has(p.did))
    const target = targets.at(-1)
    if (target === undefined) {
      return `I could not tell which proposal you mean. Name the proposer (e.g. agent-3, round 2) or a proposal id; I have voted on ${entries.filter(e => e.votes.has(p.did)).length} proposals so far.`
    }
    const who = this.#context.nameOf(target.signed.issuer)
    const vote = target.votes.get(p.did)?.signed.record
    const head = `${who}'s round ${target.signed.record.round} update (${short(target.block)})`
    if (target.signed.issuer === p.did) return `${head} is my own proposal; I do not vote on my own updates.`
    if (vote === undefined) return `I have not voted on ${head} yet${p.evaluation(target.block) === undefined ? '' : `; my evaluation so far: ${p.evaluation(target.block)?.summary}`}.`
    const decision = target.decision === undefined ? 'The federation has not decided yet.' : `The federation ${target.decision.record.accepted ? 'accepted' : 'rejected'} it (${target.decision.record.accepts} accepts of ${target.decision.record.required} needed).`
    return `I voted to ${vote.accept ? 'accept' : 'reject'} ${head}. My signed rationale: "${vote.rationale}". ${decision}`
  }
}
