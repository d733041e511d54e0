import type { BaseChatModel } from '@langchain/core/language_models/chat_models'
import { AIMessage, SystemMessage, type BaseMessage, type ToolMessage } from '@langchain/core/messages'
import type { StructuredToolInterface } from '@langchain/core/tools'
import { Annotation, END, MessagesAnnotation, START, StateGraph, type BaseCheckpointSaver } from '@langchain/langgraph'
import type { LlmCounts } from '../src/federation/driver.ts'
import type { Runnable } from '@langchain/core/runnables'
import { parseEvent, type AgentEvent } from '../src/llm/events.ts'
import { refused, textOf } from '../src/llm/policy.ts'
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
  tools: readonly StructuredToolInterface[]
  systemPrompt: string
  maxSteps: number
  /** Updated in place: how the model behaved. */
  llm: LlmCounts
  /** Updated in place: calls per tool name. */
  toolCalls: Record<string, number>
  checkpointer?: BaseCheckpointSaver
  /** Stops the agent between steps (a kill): no further model call or tool runs. */
  signal?: AbortSignal
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
 * Every call is validated against the tool's schema before it runs: an invalid one is
 * retried once with the error, then the turn's step goes to the policy. A turn ends after
 * `maxSteps` model steps whatever the model wants.
 */
export function buildParticipantGraph (init: ParticipantGraphInit) {
  const { tools, llm, toolCalls, maxSteps } = init
  // Each event offers the tools that can serve it (plus read-only and plugin tools), so a
  // small model chooses among few; the ToolNode still holds all of them.
  const offered = (event: AgentEvent['type'] | undefined): StructuredToolInterface[] => tools.filter(t => !(OFF_TOPIC[event ?? 'none'] ?? []).includes(t.name))
  const bound = new Map<string, { model: Runnable, fallback: Runnable, byName: Map<string, StructuredToolInterface> }>()
  const bind = (event: AgentEvent['type'] | undefined): { model: Runnable, fallback: Runnable, byName: Map<string, StructuredToolInterface> } => {
    const key = event ?? 'none'
    let b = bound.get(key)
    if (b === undefined) {
      const set = offered(event)
      b = { model: init.model.bindTools?.(set) ?? init.model, fallback: init.fallback.bindTools?.(set) ?? init.fallback, byName: new Map(set.map(t => [t.name, t])) }
      bound.set(key, b)
    }
    return b
  }

  async function agent (state: ParticipantStateType, config: { signal?: AbortSignal }): Promise<Partial<ParticipantStateType>> {
    init.signal?.throwIfAborted()
    if (state.steps >= maxSteps) return { messages: [new AIMessage(`Step cap of ${maxSteps} reached; ending this turn.`)] }
    const turn = currentTurn(state.messages)
    const event = turn[0]?.type === 'human' ? parseEvent(textOf(turn[0])) : undefined
    const { model, fallback, byName } = bind(event?.type)
    const context = [new SystemMessage(init.systemPrompt), ...turn]
    const think = init.think ?? (<T>(call: () => Promise<T>) => call())
    const started = performance.now()
    llm.calls++
    const first = await think(() => ask(model, context, config.signal))
    const check = (reply: AIMessage | undefined): string | undefined => invalid(reply, byName, turn) ??
      (reply !== undefined && (reply.tool_calls ?? []).length === 0 && event !== undefined ? init.duty?.(event) : undefined)
    const problem = check(first)
    let reply: AIMessage
    let via: AgentStep['via'] = 'model'
    if (problem === undefined && first !== undefined) {
      llm.valid++
      reply = first
    } else {
      llm.retried++
      via = 'retry'
      const second = await think(() => ask(model, [...context, new SystemMessage(`Your last answer was invalid: ${problem}. Answer again with one valid tool call, or a reply if you are done.`)], config.signal))
      if (check(second) === undefined && second !== undefined) {
        reply = second
      } else {
        llm.fallback++
        via = 'fallback'
        reply = await think(async () => await fallback.invoke(context, { signal: config.signal }) as AIMessage)
      }
    }
    for (const call of reply.tool_calls ?? []) toolCalls[call.name] = (toolCalls[call.name] ?? 0) + 1
    const calls = (reply.tool_calls ?? []).map(c => ({ name: c.name, args: c.args }))
    init.onStep?.({ step: state.steps + 1, event: event?.type, calls, reply: calls.length === 0 ? textOf(reply) : '', via, seconds: (performance.now() - started) / 1000 })
    return { messages: [reply], steps: state.steps + 1 }
  }

  const route = (state: ParticipantStateType): 'tools' | typeof END => {
    const last = state.messages.at(-1) as AIMessage | undefined
    return (last?.tool_calls?.length ?? 0) > 0 ? 'tools' : END
  }

  return new StateGraph(ParticipantState)
    .addNode('agent', agent)
    .addNode('tools', new ConclaveToolNode(tools))
    .addEdge(START, 'agent')
    .addConditionalEdges('agent', route, ['tools', END])
    .addEdge('tools', 'agent')
    .compile({ checkpointer: init.checkpointer })
}

/** The messages since the latest event: each turn is judged on its own. */
export function currentTurn (messages: readonly BaseMessage[]): BaseMessage[] {
  const start = messages.findLastIndex(m => m.type === 'human')
  return messages.slice(Math.max(0, start))
}

/** Protocol tools that cannot serve an event. */
const OFF_TOPIC: Record<string, string[]> = {
  'round-open': ['evaluate', 'vote'],
  proposal: ['train', 'publish', 'anchor'],
  none: ['train', 'publish', 'anchor', 'evaluate', 'vote']
}

async function ask (model: Runnable, messages: BaseMessage[], signal?: AbortSignal): Promise<AIMessage | undefined> {
  try {
    return await model.invoke(messages, { signal }) as AIMessage
  } catch (err) {
    if (signal?.aborted === true) throw err
    return new AIMessage({ content: '', invalid_tool_calls: [{ type: 'invalid_tool_call', id: 'error', name: undefined, args: undefined, error: `the model failed: ${(err as Error).message}` }] })
  }
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
function invalid (reply: AIMessage | undefined, tools: Map<string, StructuredToolInterface>, turn: readonly BaseMessage[]): string | undefined {
  if (reply === undefined) return 'no answer'
  const bad = reply.invalid_tool_calls?.[0]
  if (bad !== undefined) return bad.error ?? 'malformed tool call'
  const calls = reply.tool_calls ?? []
  if (calls.length === 0) return textOf(reply).trim() === '' ? 'an empty answer' : undefined
  if (calls.length > 1) return 'one tool call at a time'
  for (const call of calls) {
    const tool = tools.get(call.name)
    if (tool === undefined) return `there is no tool named ${call.name} for this event; the tools are ${[...tools.keys()].join(', ')}`
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
