import type { BaseChatModel } from '@langchain/core/language_models/chat_models'
import { AIMessage, SystemMessage, type BaseMessage } from '@langchain/core/messages'
import type { Runnable } from '@langchain/core/runnables'
import type { StructuredToolInterface } from '@langchain/core/tools'
import { Annotation, END, MessagesAnnotation, START, StateGraph } from '@langchain/langgraph'
import { textOf } from '../src/llm/policy.ts'
import { ask, DEFAULT_LLM_TIMEOUT_MS } from './ask.ts'
import { invalid } from './participant.ts'
import { ConclaveToolNode } from './tool-node.ts'

export const ChatState = Annotation.Root({
  ...MessagesAnnotation.spec,
  /** Steps the model has taken on this question. */
  steps: Annotation<number>({ reducer: (_old, next) => next, default: () => 0 }),
  /** Set once the model's step was invalid twice: the chat policy finishes the answer. */
  byPolicy: Annotation<boolean>({ reducer: (_old, next) => next, default: () => false })
})
export type ChatStateType = typeof ChatState.State

export interface ChatGraphInit {
  model: BaseChatModel
  /** Finishes an answer the model could not (the chat policy, which calls a tool and words its result). */
  fallback: BaseChatModel
  /** Read-only tools over the record. */
  tools: readonly StructuredToolInterface[]
  systemPrompt: string
  /** Most model steps per question before the policy finishes it. */
  maxSteps: number
  /** Tool results after which the model may only answer (a small model otherwise calls on and on). @default 1 */
  maxTools?: number
  /** Longest one model call may take: one with no answer by then is an invalid answer (retried, then the policy answers). @default 300 000 (5 min) */
  llmTimeoutMs?: number
}

/** Steps the chat policy may need to finish an answer: one tool call and its reply. */
const POLICY_STEPS = 2

/**
 * The graph that answers a researcher's question: `agent` (the model calls a read-only tool
 * or answers) ⇄ `tools`. An answer must rest on the record: a reply before any tool result
 * is invalid, as is a call that does not fit its tool's schema; after `maxTools` results
 * the model may only answer. An invalid step is retried once with the reason, then the
 * chat policy finishes the answer, as it does past `maxSteps`. Each question is its own
 * thread: answers come from the record, not memory.
 */
export function buildChatGraph (init: ChatGraphInit) {
  const byName = new Map(init.tools.map(t => [t.name, t]))
  const model: Runnable = init.model.bindTools?.([...init.tools]) ?? init.model
  const answering: Runnable = init.model.bindTools?.([]) ?? init.model
  const fallback: Runnable = init.fallback.bindTools?.([...init.tools]) ?? init.fallback
  const maxTools = init.maxTools ?? 1

  async function agent (state: ChatStateType, config: { signal?: AbortSignal }): Promise<Partial<ChatStateType>> {
    const context = [new SystemMessage(init.systemPrompt), ...state.messages]
    const steps = state.steps + 1
    // The policy's steps are checked too: a call that does not fit its tool ends the answer with the reason, never the run.
    const byPolicy = async (): Promise<Partial<ChatStateType>> => {
      const reply = await fallback.invoke(context, { signal: config.signal }) as AIMessage
      const problem = invalid(reply, byName, state.messages)
      return { messages: [problem === undefined ? reply : new AIMessage(`I could not read that from the record: ${problem}.`)], steps, byPolicy: true }
    }
    if (state.byPolicy || state.steps >= init.maxSteps) {
      if (state.steps >= init.maxSteps + POLICY_STEPS) return { messages: [new AIMessage('I could not finish this answer from the record.')], steps }
      return byPolicy()
    }
    const read = state.messages.filter(m => m.type === 'tool').length >= maxTools
    const check = (reply: AIMessage | undefined): string | undefined => invalid(reply, read ? new Map() : byName, state.messages) ?? ungrounded(reply, state.messages)
    const asking = read ? answering : model
    if (read) context.push(new SystemMessage(ANSWER_NOW))
    const bounds = { signal: config.signal, timeoutMs: init.llmTimeoutMs ?? DEFAULT_LLM_TIMEOUT_MS }
    const first = await ask(asking, context, bounds)
    if (check(first) === undefined && first !== undefined) return { messages: [first], steps }
    const second = await ask(asking, [...context, new SystemMessage(`Your last answer was invalid: ${check(first)}. Answer again.`)], bounds)
    if (check(second) === undefined && second !== undefined) return { messages: [second], steps }
    return byPolicy()
  }

  const route = (state: ChatStateType): 'tools' | typeof END => ((state.messages.at(-1) as AIMessage | undefined)?.tool_calls?.length ?? 0) > 0 ? 'tools' : END

  return new StateGraph(ChatState)
    .addNode('agent', agent)
    .addNode('tools', new ConclaveToolNode(init.tools))
    .addEdge(START, 'agent')
    .addConditionalEdges('agent', route, ['tools', END])
    .addEdge('tools', 'agent')
    .compile()
}

const ANSWER_NOW = 'Now answer the question in one or two plain sentences, from the tool results above: name the members, rounds and proposal ids exactly as they appear there.'

/**
 * A reply must rest on what the tools returned: before any result it says nothing the record
 * holds, and after one it must name something in it (an id, a member, a number of 2+ digits).
 */
function ungrounded (reply: AIMessage | undefined, messages: readonly BaseMessage[]): string | undefined {
  if ((reply?.tool_calls?.length ?? 0) > 0) return undefined
  const results = messages.filter(m => m.type === 'tool').map(textOf).join('\n')
  if (results === '') return 'answer from the record: call one of the tools first, then reply with what it returned'
  const cites = (reply === undefined ? '' : textOf(reply)).split(/[^\w.-]+/).some(w => (w.length >= 6 || /^agent-\d+$|\d\d/.test(w)) && results.includes(w))
  return cites ? undefined : 'your answer names nothing the tool results hold: quote the members, rounds, ids or figures they give'
}

/** The answer a finished chat graph holds: its last message's text. */
export function answerOf (state: ChatStateType): string {
  const last = state.messages.at(-1)
  return last === undefined ? '' : textOf(last).trim()
}
