import type { BaseChatModel } from '@langchain/core/language_models/chat_models'
import { AIMessage, SystemMessage, type BaseMessage, type ToolMessage } from '@langchain/core/messages'
import type { StructuredToolInterface } from '@langchain/core/tools'
import { Annotation, END, MessagesAnnotation, START, StateGraph, type BaseCheckpointSaver } from '@langchain/langgraph'
import { z } from 'zod'
import type { Decisions, LlmCounts } from '../src/federation/driver.ts'
import type { Runnable } from '@langchain/core/runnables'
import type { Logger } from '../src/core/logger.ts'
import { POLICY } from '../src/core/records.ts'
import { parseEvent, type AgentEvent } from '../src/llm/events.ts'
import { refused, textOf } from '../src/llm/policy.ts'
import type { BoundTool } from '../tools/define.ts'
import { ask, DEFAULT_LLM_TIMEOUT_MS } from './ask.ts'
import { ConclaveToolNode } from './tool-node.ts'

export const ParticipantState = Annotation.Root({
  ...MessagesAnnotation.spec,
  /** Model steps taken for the current event; the agent resets it per event. */
  steps: Annotation<number>({ reducer: (_old, next) => next, default: () => 0 })
})
export type ParticipantStateType = typeof ParticipantState.State

export interface ParticipantGraphInit {
  model: BaseChatModel
  /** Takes over a turn when the model's call is invalid twice (the protocol policy). */
  fallback: BaseChatModel
  /** Every tool the agent has, each with what it accepts now where it narrows that (tools/define.ts `legal`). */
  tools: readonly BoundTool[]
  /** Read at each step: what it says may follow state the agent learns as it goes (the charter's judgement). */
  systemPrompt: () => string
  maxSteps: number
  /** Updated in place: how the model behaved. */
  llm: LlmCounts
  /** Updated in place: calls per tool name. */
  toolCalls: Record<string, number>
  /** Updated in place: per tool, the calls the model made and those the policy made. */
  decisions: Decisions
  /** The model's name on the record (`decidedBy`): its spec, or `policy` when the policy is the model. */
  decider: string
  checkpointer?: BaseCheckpointSaver
  /** Stops the agent between steps (a kill): no further model call or tool runs. */
  signal?: AbortSignal
  /** Longest one model call may take: one with no answer by then is an invalid answer (retried, then the policy). @default 300 000 (5 min) */
  llmTimeoutMs?: number
  /** True while the agent is paused (a researcher's `!pause`): its turn ends before the next model step. */
  paused?: () => boolean
  /** Hears each invalid model step and why (the counts say how many; this says what). */
  logger?: Logger
  /** What an event still requires before the turn may end (a vote on a peer's proposal), or undefined. */
  duty?: (event: AgentEvent) => string | undefined
  /** Runs each call of the model or the fallback, e.g. on the participant's phase timer. @default runs it */
  think?: <T>(call: () => Promise<T>) => Promise<T>
  /** Told of every step once the model decided it (`--verbose` prints it). */
  onStep?: (step: AgentStep) => void
}

/** One model step of a turn: what it decided, how, and how long the model took. */
export interface AgentStep {
  /** 1-based within the turn. */
  step: number
  event?: AgentEvent['type']
  /** The tool calls decided; none when the step ends the turn with `reply`. */
  calls: Array<{ name: string, args: unknown }>
  reply: string
  /** Valid at once, after one retry, or taken over by the fallback policy. */
  via: 'model' | 'retry' | 'fallback'
  /** Seconds spent in model calls for this step, retry and fallback included. */
  seconds: number
}

/**
 * The participant's ReAct graph: `agent` (the model picks a tool call or ends the turn) ⇄
 * `tools` (a ConclaveToolNode runs it: a Conclave error goes back to the model as a tool
 * message with status 'error', any other error ends the run).
 * Each step offers the model only what is legal now (`offer`): the tools that can serve the
 * event, each narrowed to the calls the agent's state allows, and no way to end a turn that
 * owes a vote. Every call is validated against that before it runs: an invalid one is
 * retried once with the error, then the step goes to the policy. A turn ends after
 * `maxSteps` model steps whatever the model wants.
 */
export function buildParticipantGraph (init: ParticipantGraphInit) {
  const { llm, toolCalls, decisions, maxSteps } = init

  async function agent (state: ParticipantStateType, config: { signal?: AbortSignal }): Promise<Partial<ParticipantStateType>> {
    init.signal?.throwIfAborted()
    if (state.steps >= maxSteps) return { messages: [new AIMessage(`Step cap of ${maxSteps} reached; ending this turn.`)] }
    if (init.paused?.() === true) return { messages: [new AIMessage('Paused by a researcher; ending this turn until !resume.')] }
    const turn = currentTurn(state.messages)
    const event = turn[0]?.type === 'human' ? parseEvent(textOf(turn[0])) : undefined
    const owed = event === undefined ? undefined : init.duty?.(event)
    const set = offer(init.tools, { event: event?.type, turn, owed: owed !== undefined, stepsLeft: maxSteps - state.steps })
    const fallback: Runnable = init.fallback.bindTools?.(set) ?? init.fallback
    /** The model bound to what `tools` allows, and the check of its answer against exactly that. */
    const asked = (tools: Offered[]): { model: Runnable, check: (reply: AIMessage | undefined) => string | undefined } => {
      // A turn that owes a vote may not end while a tool can still serve it.
      const mustCall = owed !== undefined && tools.length > 0
      const byName = new Map(tools.map(t => [t.name, t]))
      return {
        model: init.model.bindTools?.(tools, mustCall ? { tool_choice: 'any' } : {}) ?? init.model,
        check: reply => invalid(reply, byName, turn) ?? (reply !== undefined && (reply.tool_calls ?? []).length === 0 && mustCall ? owed : undefined)
      }
    }
    const context = [new SystemMessage(init.systemPrompt()), ...turn]
    const think = init.think ?? (<T>(call: () => Promise<T>) => call())
    const started = performance.now()
    llm.calls++
    const asking = { signal: config.signal, timeoutMs: init.llmTimeoutMs ?? DEFAULT_LLM_TIMEOUT_MS }
    const offered = asked(set)
    const first = await think(() => ask(offered.model, context, asking))
    const problem = offered.check(first)
    let reply: AIMessage
    let via: AgentStep['via'] = 'model'
    if (problem === undefined && first !== undefined) {
      llm.valid++
      reply = first
    } else {
      llm.retried++
      via = 'retry'
      const retry = asked(without(set, first))
      const second = await think(() => ask(retry.model, [...context, new SystemMessage(`Your last answer was invalid: ${problem}. Answer again with one valid tool call, or a reply if you are done.`)], asking))
      const again = retry.check(second)
      init.logger?.info('invalid model step', { decider: init.decider, problem, retry: again ?? 'valid', answer: shown(first), second: shown(second) })
      if (again === undefined && second !== undefined) {
        reply = second
      } else {
        llm.fallback++
        via = 'fallback'
        reply = await think(async () => await fallback.invoke(context, { signal: config.signal }) as AIMessage)
      }
    }
    const decidedBy = via === 'fallback' ? POLICY : init.decider
    for (const call of reply.tool_calls ?? []) {
      toolCalls[call.name] = (toolCalls[call.name] ?? 0) + 1
      const counts = decisions[call.name] ??= { model: 0, policy: 0 }
      counts[decidedBy === POLICY ? 'policy' : 'model']++
    }
    const calls = (reply.tool_calls ?? []).map(c => ({ name: c.name, args: c.args }))
    init.onStep?.({ step: state.steps + 1, event: event?.type, calls, reply: calls.length === 0 ? textOf(reply) : '', via, seconds: (performance.now() - started) / 1000 })
    return { messages: [authored(reply, decidedBy)], steps: state.steps + 1 }
  }

  const route = (state: ParticipantStateType): 'tools' | typeof END => {
    const last = state.messages.at(-1) as AIMessage | undefined
    return (last?.tool_calls?.length ?? 0) > 0 ? 'tools' : END
  }

  return new StateGraph(ParticipantState)
    .addNode('agent', agent)
    .addNode('tools', new ConclaveToolNode(init.tools.map(t => t.tool)))
    .addEdge(START, 'agent')
    .addConditionalEdges('agent', route, ['tools', END])
    .addEdge('tools', 'agent')
    .compile({ checkpointer: init.checkpointer })
}

/**
 * The reply with who decided it as its author: the tool node hands that to the tools (a vote
 * records it). Given to the constructor, so the checkpoint keeps it and a restarted agent's
 * resumed call is still its decider's; a `name` set on a made message is not serialized.
 */
function authored (reply: AIMessage, name: string): AIMessage {
  return new AIMessage({ content: reply.content, tool_calls: reply.tool_calls, invalid_tool_calls: reply.invalid_tool_calls, additional_kwargs: reply.additional_kwargs, response_metadata: reply.response_metadata, id: reply.id, name })
}

/** A model's answer in a log line: its calls, or its text. */
function shown (reply: AIMessage | undefined): string {
  const calls = reply?.tool_calls ?? []
  return (calls.length > 0 ? JSON.stringify(calls.map(c => ({ name: c.name, args: c.args }))) : reply === undefined ? '' : textOf(reply)).slice(0, 300)
}

/**
 * What a retry offers: the step's offer less the tools the invalid answer called, unless
 * nothing would be left. A small model answering at temperature 0 under the same grammar
 * gives the same answer again (Gemma 3 270M repeated `read_ledger {"last": -1}`, a range its
 * grammar cannot express, word for word), so the retry must leave that choice out to be a
 * second chance at all; what the model may call stays a subset of what was legal.
 */
function without (set: readonly Offered[], reply: AIMessage | undefined): Offered[] {
  const called = new Set((reply?.tool_calls ?? []).map(c => c.name))
  const rest = set.filter(t => !called.has(t.name))
  return rest.length > 0 ? rest : [...set]
}

/** The messages since the latest event: each turn is judged on its own. */
export function currentTurn (messages: readonly BaseMessage[]): BaseMessage[] {
  const start = messages.findLastIndex(m => m.type === 'human')
  return messages.slice(Math.max(0, start))
}

/** What a step may call: a tool's name and description, and the schema its call must fit now. */
type Offered = Pick<StructuredToolInterface, 'name' | 'description' | 'schema'>

/**
 * The tools the model may call at this step, each with the schema that fits what is legal
 * now: tools that can serve the event; a tool that narrows its calls offers only those (and
 * is left out when it has none); a tool that does not (read-only and plugin tools) once per
 * turn. When the steps left are only enough to pay a vote owed, only the tools that pay it.
 */
export function offer (tools: readonly BoundTool[], { event, turn, owed, stepsLeft }: { event: AgentEvent['type'] | undefined, turn: readonly BaseMessage[], owed: boolean, stepsLeft: number }): Offered[] {
  const called = new Set(turn.flatMap(m => m.type === 'ai' ? ((m as AIMessage).tool_calls ?? []).map(c => c.name) : []))
  const hurry = owed && stepsLeft <= DUTY.length - 1
  return tools.flatMap(({ tool, legal }): Offered[] => {
    if ((OFF_TOPIC[event ?? 'none'] ?? []).includes(tool.name) || (hurry && !DUTY.includes(tool.name))) return []
    if (legal === undefined) return called.has(tool.name) ? [] : [tool]
    const [first, ...more] = legal()
    if (first === undefined) return []
    return [{ name: tool.name, description: tool.description, schema: more.length === 0 ? first : z.union([first, ...more]) }]
  })
}

/** The tools that pay a vote owed, in order. */
const DUTY = ['distill', 'evaluate', 'vote']

/** Protocol tools that cannot serve an event. */
const OFF_TOPIC: Record<string, string[]> = {
  'round-open': ['evaluate', 'vote'],
  proposal: ['train', 'publish', 'anchor'],
  none: ['train', 'publish', 'anchor', 'evaluate', 'vote']
}

/**
 * Whether `call` repeats one made this turn to no purpose: the same call succeeded already,
 * or it failed as the very last call (nothing changed since). A failed call may be made
 * again after another step (e.g. train, refused, then distill, then train).
 */
function repeats (call: { name: string, args: unknown }, turn: readonly BaseMessage[]): boolean {
  const same = (c: { name: string, args: unknown }): boolean => c.name === call.name && JSON.stringify(c.args) === JSON.stringify(call.args)
  const calls = turn.flatMap(m => m.type === 'ai' ? ((m as AIMessage).tool_calls ?? []) : [])
  const failed = (id: string | undefined): boolean => turn.some(m => refused(m) && (m as ToolMessage).tool_call_id === id)
  return calls.some(c => same(c) && (!failed(c.id) || c === calls.at(-1)))
}

/** Why a model reply cannot run, or undefined when every call names a tool and fits its schema. */
export function invalid (reply: AIMessage | undefined, tools: Map<string, Offered>, turn: readonly BaseMessage[]): string | undefined {
  if (reply === undefined) return 'no answer'
  const bad = reply.invalid_tool_calls?.[0]
  if (bad !== undefined) return bad.error ?? 'malformed tool call'
  const calls = reply.tool_calls ?? []
  if (calls.length === 0) return textOf(reply).trim() === '' ? 'an empty answer' : undefined
  if (calls.length > 1) return 'one tool call at a time'
  for (const call of calls) {
    const tool = tools.get(call.name)
    if (tool === undefined) return `${call.name} is not a tool you can call now; the tools are ${[...tools.keys()].join(', ')}`
    if (repeats(call, turn)) return `you already called ${call.name} with these arguments in this turn; its result is above, take the next step`
    const schema = tool.schema as { safeParse?: (v: unknown) => { success: boolean, error?: { issues: Array<{ path: PropertyKey[], message: string }> } } }
    const parsed = schema.safeParse?.(call.args)
    if (parsed !== undefined && !parsed.success) {
      const issue = parsed.error?.issues[0]
      return `arguments of ${call.name} do not fit its schema${issue === undefined ? '' : ` (${issue.path.join('.') || 'args'}: ${issue.message})`}`
    }
  }
  return undefined
}
