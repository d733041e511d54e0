import { AsyncResource } from 'node:async_hooks'
import { randomUUID } from 'node:crypto'
import type { BaseChatModel } from '@langchain/core/language_models/chat_models'
import { HumanMessage } from '@langchain/core/messages'
import { tool, type StructuredToolInterface } from '@langchain/core/tools'
import { z } from 'zod'
import { silentLogger, type Logger } from '../src/core/logger.ts'
import type { Did } from '../src/core/records.ts'
import type { ChatRules, LlmCounts } from '../src/federation/driver.ts'
import type { Ledger } from '../src/ledger/index.ts'
import { ChatPolicyChatModel } from '../src/llm/chat-policy.ts'
import type { Bus, Subscription } from '../src/transport/index.ts'
import { answerOf, buildChatGraph } from '../graphs/chat.ts'
import { ChatGate } from '../src/federation/chat-gate.ts'
import { leadingMentions, mentions } from '../src/federation/mentions.ts'
import { loadPrompt } from '../prompts/index.ts'
import { bindTools, CHAT_TOOLS, chatToolsNow, type ParticipantView, type ToolDefinition } from '../tools/index.ts'

/** What an agent answers about: its participant's record, and what it did. */
export interface ChatMember {
  participant: ParticipantView
  ledger: Ledger
  nameOf: (did: Did) => string
  /** Rounds the run was configured for, when known: past them the run has ended. */
  plannedRounds?: number
  /** Brings the participant's state up to the ledger as it stands; runs before every answer. */
  sync: () => Promise<unknown>
  /** The agent's tools, and its tool and model calls so far. */
  activity: () => { tools: readonly string[], toolCalls: Record<string, number>, llm?: LlmCounts }
  /** Commands that act (!pause, !resume, !propose); absent: the agent is read-only (a finished run's). */
  control?: { pause: () => Promise<string>, resume: () => Promise<string>, propose: () => string, paused: () => boolean }
}

export interface AgentChatOptions {
  /** The model that answers questions; @default the chat policy */
  model?: BaseChatModel
  /** Most model steps per question before the policy finishes it. @default 4 */
  maxSteps?: number
  /** Tool results per question after which the model may only answer. @default 1 */
  maxTools?: number
  /** Longest one model call may take (a stalled server): then the chat policy answers. @default 300 000 (5 min) */
  llmTimeoutMs?: number
  logger?: Logger
}

/**
 * An agent's side of the conversation with researchers. A question goes to its model with
 * read-only tools over the record (CHAT_TOOLS and my_tools); the chat policy answers the
 * common ones, and finishes whatever the model cannot. Every answer is given after the
 * participant caught up with the ledger. `!commands` act on the agent when it is live.
 */
export class AgentChat {
  /** Questions answered by the model, and by the chat policy (no model, or it could not finish). */
  readonly answered = { model: 0, policy: 0 }
  readonly #member: ChatMember
  readonly #options: AgentChatOptions
  readonly #systemPrompt: string
  /** The chat policy over the tools: what answers without a model, and what !status and !tools say. */
  readonly #policy: ReturnType<typeof buildChatGraph>
  readonly #logger: Logger
  /** Runs outside whatever graph the caller is in (a bus delivery inside an agent's turn), so the answer is no subgraph of it. */
  readonly #detached = AsyncResource.bind(<T>(fn: () => T): T => fn())

  private constructor (member: ChatMember, options: AgentChatOptions, systemPrompt: string) {
    this.#member = member
    this.#options = options
    this.#systemPrompt = systemPrompt
    this.#policy = this.#build(new ChatPolicyChatModel(), CHAT_TOOLS)
    this.#logger = options.logger ?? silentLogger
  }

  static async create (member: ChatMember, options: AgentChatOptions = {}): Promise<AgentChat> {
    return new AgentChat(member, options, await loadPrompt('chat', { name: member.participant.name }))
  }

  /** The chat graph for one question: `tools` bound to my participant, the chat policy finishing what the model cannot. */
  #build (model: BaseChatModel, tools: readonly ToolDefinition[]): ReturnType<typeof buildChatGraph> {
    const m = this.#member
    const bound = [...bindTools(tools, { participant: m.participant, ledger: m.ledger, nameOf: m.nameOf, plannedRounds: m.plannedRounds }).map(b => b.tool), myTools(m)]
    return buildChatGraph({ model, fallback: new ChatPolicyChatModel(), tools: bound, systemPrompt: this.#systemPrompt, maxSteps: this.#options.maxSteps ?? 4, maxTools: this.#options.maxTools, llmTimeoutMs: this.#options.llmTimeoutMs })
  }

  get name (): string { return this.#member.participant.name }

  /** Answers a researcher's message (a question, or a `!command`) from the record as it stands now. */
  async answer (body: string): Promise<string> {
    const { text } = leadingMentions(body)
    await this.#member.sync()
    if (text.startsWith('!')) {
      const [name = ''] = text.slice(1).trim().split(/\s+/)
      return this.#command(name.toLowerCase())
    }
    const model = this.#options.model
    // A model's arguments can name only what the record holds now (ids, rounds, members): a small model cannot invent one.
    const graph = model === undefined ? this.#policy : this.#build(model, chatToolsNow(this.#member.participant.state, this.members()))
    const { answer, byPolicy } = await this.#ask(graph, text)
    this.answered[byPolicy || model === undefined ? 'policy' : 'model']++
    return answer
  }

  /** The members' names, in the charter's order (just mine before there is one). */
  members (): string[] {
    const { state } = this.#member.participant
    return state.charter === undefined ? [this.name] : state.charter.record.members.map(this.#member.nameOf)
  }

  /**
   * Answers in the room: a message that mentions me (`@agent-2 …`), or a bare `!command`
   * meant for every agent. Every reply starts with my name (`agent-2: …`, or `agent-2 paused…`), so replies to a broadcast say
   * who sent each. A message addressed only to agents that are not members gets one reply,
   * from the founder (the charter's first member), naming the members. Commands that act
   * come only from those who may steer, and everyone gets at most so many answers per window
   * (chat-gate.ts); a refusal or a request to wait, for a message not addressed to me by
   * name, comes from the founder alone.
   */
  async listen (bus: Bus, room: string, rules: ChatRules): Promise<Subscription> {
    const me = this.name
    const gate = new ChatGate(rules)
    return bus.subscribe(room, (message) => {
      if (message.kind !== 'chat') return
      const members = this.members()
      if ([me, this.#member.participant.did, bus.sender, ...members].includes(message.from)) return
      const reply = this.#replyTo(message.body, message.from, members, gate)
      if (reply === undefined) return
      void reply
        .then(body => bus.publish(room, { kind: 'chat', from: me, body: (body.startsWith(`${me} `) ? body : `${me}: ${body}`).slice(0, 8000), inReplyTo: message.id, id: randomUUID() }))
        .catch((err: unknown) => { this.#logger.warn(`${me}: could not answer chat`, { error: (err as Error).message }) })
    }, { kinds: ['chat'] })
  }

  #replyTo (body: string, from: string, members: readonly string[], gate: ChatGate): Promise<string> | undefined {
    const addressed = mentions(body)
    const mentioned = addressed.includes(this.name)
    const founder = members[0] === this.name
    const strangers = strangersIn(addressed, members)
    const broadcast = addressed.length === 0 && body.trim().startsWith('!')
    if (!mentioned && !broadcast && (strangers.length === 0 || !founder)) return undefined
    const { text } = leadingMentions(body)
    const command = mentioned || broadcast ? /^!\s*(\S+)/.exec(text)?.[1]?.toLowerCase() : undefined
    const admission = gate.admit(from, command)
    if (admission === 'ignore' || (admission !== 'answer' && !mentioned && !founder)) return undefined
    if (admission !== 'answer') return Promise.resolve(gate.note(admission, command, 'questions, or !status'))
    return mentioned || broadcast ? this.answer(body) : Promise.resolve(strangersReply(strangers, members))
  }

  async #ask (graph: ReturnType<typeof buildChatGraph>, question: string): Promise<{ answer: string, byPolicy: boolean }> {
    const state = await this.#detached(() => graph.invoke({ messages: [new HumanMessage(question)] }, { recursionLimit: 32 }))
    return { answer: answerOf(state), byPolicy: state.byPolicy }
  }

  async #command (name: string): Promise<string> {
    const control = this.#member.control
    switch (name) {
      case 'status': return `${(await this.#ask(this.#policy, 'status')).answer} ${this.#doings()}`
      case 'tools': return (await this.#ask(this.#policy, 'which tools do you have')).answer
      case 'pause': case 'resume': case 'propose':
        return control === undefined ? `I am ${this.name} of a run loaded read-only: I answer questions but cannot !${name}.` : control[name]()
      case 'federate': return `I am ${this.name} of a federation that is running${control === undefined ? ' or has run' : ''}: a new one is called with !federate in a lobby (conclave agent --lobby), once the agents there are free.`
      // Nothing of the sender's words comes back beyond a plain command name: the answer is the agent's own message (found red-teaming: anyone's `@room` and links were posted).
      default: return `Unknown command${/^[a-z][a-z0-9-]{0,31}$/.test(name) ? ` !${name}` : ''}. Commands: !status, !tools, !propose, !pause, !resume; or ask me a question (why I voted on a proposal, the accuracy trend, reputations, what a round merged).`
    }
  }

  /** What I have done, for !status. */
  #doings (): string {
    const { participant, control } = this.#member
    const entries = [...participant.state.proposals.values()]
    const mine = entries.filter(e => e.signed.issuer === participant.did)
    const votes = entries.filter(e => e.votes.has(participant.did)).length
    const llm = this.#member.activity().llm
    return `${control?.paused() === true ? 'I am paused. ' : ''}I made ${mine.length} proposals (${mine.filter(e => e.decision?.record.accepted === true).length} accepted) and cast ${votes} votes` +
      `${llm === undefined ? '' : `; model: ${llm.calls} calls, ${llm.valid} valid, ${llm.retried} retried, ${llm.fallback} fallbacks`}.`
  }
}

/** Member names look like this; a mention of such a name that is no member gets told who is. */
const AGENT_NAME = /^agent-[\w-]+$/i

/** What a message addressed only to agents that are not members gets. */
export function strangersReply (strangers: readonly string[], members: readonly string[]): string {
  return `There is no ${strangers.join(' or ')} in this federation. Its members are ${members.join(', ')}: ask one with @${members[0]}, or send a !command to all.`
}

/** Of a message's mentions (`mentions(body)`), those of agents that are not members, when it mentions no member. */
export function strangersIn (addressed: readonly string[], members: readonly string[]): string[] {
  if (addressed.some(n => members.includes(n))) return []
  return addressed.filter(n => AGENT_NAME.test(n))
}

/** The agent's tools and its use of them: not on the ledger, so a tool of the agent's own. */
function myTools (member: ChatMember): StructuredToolInterface {
  return tool(async () => {
    const { tools, toolCalls } = member.activity()
    return JSON.stringify({ tools, calls: toolCalls, readOnly: [...CHAT_TOOLS.map(t => t.name), 'my_tools'] })
  }, {
    name: 'my_tools',
    description: 'The tools I act with in the federation, and how often I called each.',
    schema: z.object({})
  }) as unknown as StructuredToolInterface
}
