import { randomUUID } from 'node:crypto'
import { BaseChatModel, type BaseChatModelParams, type BindToolsInput } from '@langchain/core/language_models/chat_models'
import { AIMessage, type BaseMessage, type ToolCall, type ToolMessage } from '@langchain/core/messages'
import type { ChatResult } from '@langchain/core/outputs'
import type { StructuredToolInterface } from '@langchain/core/tools'
import { z } from 'zod'
import { POLICY } from '../core/records.ts'
import { parseEvent } from './events.ts'

/** A tool call the policy wants next, or the text that ends the turn. */
export type PolicyStep = { tool: string, args: Record<string, unknown> } | { reply: string }

/**
 * The protocol policy: a deterministic "model" that emits exactly the tool calls the
 * protocol's rules imply for the current event, and nothing else. It is not a language
 * model and does not reason; it is the embedded default when no model is configured or
 * reachable, and the fallback when a real model's call is invalid twice in a row.
 *
 *   round opens        → train, publish, anchor (each unless done before the turn: a turn a
 *                        pause cut short left a draft, which `offered` no longer lists train for)
 *   a peer's proposal  → evaluate it (unless this turn did), then vote on it as the acceptance
 *                        rule recommends by that evaluation (not another proposal's)
 *   either, while questions wait for a teacher's answer and budget remains → distill first
 *
 * A refused tool call ends its turn, except a model's refused vote: the vote is still owed.
 *
 * `offered`: the tools the step may call (as bound); absent, any.
 */
export function policyStep (messages: readonly BaseMessage[], offered?: ReadonlySet<string>): PolicyStep {
  const start = messages.findLastIndex(m => m.type === 'human')
  const event = start < 0 ? undefined : parseEvent(textOf(messages[start] as BaseMessage))
  if (event === undefined) return { reply: 'No protocol event to act on.' }
  const done = new Set<string>()
  // Evaluations and votes by the proposal they name: a model may have evaluated (or voted on)
  // another pending proposal in this turn, and the event's vote must rest on the event's own.
  const evaluations = new Map<string, ProposalResult>()
  const voted = new Set<string>()
  for (const m of messages.slice(start + 1)) {
    if (m.type !== 'tool') continue
    const name = (m as BaseMessage & { name?: string }).name ?? ''
    const text = textOf(m)
    if (refused(m)) {
      // A model's vote refused (one the charter's judgement does not allow) leaves the vote owed: the policy casts it by the rule.
      if (name === 'vote' && !madeByPolicy(messages, m)) continue
      return { reply: `Stopped: ${name} failed (${text.slice(0, 200)}).` }
    }
    done.add(name)
    const about = ProposalResult.safeParse(safeJson(text))
    if (about.success && name === 'evaluate') evaluations.set(about.data.proposal, about.data)
    if (about.success && name === 'vote') voted.add(about.data.proposal)
  }
  if (event.distillable !== undefined && !done.has('distill')) return { tool: 'distill', args: {} }
  if (event.type === 'round-open') {
    const next = PROPOSING.find(tool => !done.has(tool) && (offered?.has(tool) ?? true))
    if (next !== undefined) return { tool: next, args: {} }
    return { reply: done.has('anchor') ? `Proposed my round ${event.round} update.` : `Nothing left to do for round ${event.round}.` }
  }
  const evaluation = evaluations.get(event.proposal)
  if (evaluation === undefined) return { tool: 'evaluate', args: { proposal: event.proposal } }
  if (!voted.has(event.proposal)) {
    const accept = evaluation.passesRule === true
    return { tool: 'vote', args: { proposal: event.proposal, accept, rationale: `protocol policy: the update ${accept ? 'passes' : 'fails'} the federation's acceptance rule` } }
  }
  return { reply: `Voted on ${event.proposal}.` }
}

/** Whether the call a tool message answers was the policy's own (graphs/participant.ts names each reply by who decided it). */
function madeByPolicy (messages: readonly BaseMessage[], result: BaseMessage): boolean {
  const id = (result as ToolMessage).tool_call_id
  const call = messages.find(m => m.type === 'ai' && ((m as AIMessage).tool_calls ?? []).some(c => c.id === id))
  return call?.name === POLICY
}

/** What the policy reads of an evaluate or vote result (tools/evaluate.ts, tools/vote.ts): the proposal it is about, and the rule's verdict. */
const ProposalResult = z.object({ proposal: z.string(), passesRule: z.boolean().optional() })
type ProposalResult = z.infer<typeof ProposalResult>

/** A round's steps to a proposal, in order. */
const PROPOSING = ['train', 'publish', 'anchor'] as const

export class ProtocolPolicyChatModel extends BaseChatModel {
  readonly #offered?: ReadonlySet<string>

  constructor (fields: BaseChatModelParams = {}, offered?: ReadonlySet<string>) {
    super(fields)
    this.#offered = offered
  }

  _llmType (): string { return 'conclave-protocol-policy' }

  /** The policy knows the protocol tools by name; bound, it calls only those offered. */
  override bindTools (tools: BindToolsInput[]): this {
    return new ProtocolPolicyChatModel({}, new Set((tools as StructuredToolInterface[]).map(t => t.name))) as this
  }

  async _generate (messages: BaseMessage[]): Promise<ChatResult> {
    return stepResult(policyStep(messages, this.#offered), 'policy')
  }
}

/** A policy's step as a chat model's answer: one tool call (its id unique in the thread), or the reply. */
export function stepResult (step: PolicyStep, prefix: string): ChatResult {
  const message = 'tool' in step
    ? new AIMessage({ content: '', tool_calls: [{ id: `${prefix}-${randomUUID()}`, name: step.tool, args: step.args, type: 'tool_call' } satisfies ToolCall] })
    : new AIMessage(step.reply)
  return { generations: [{ text: typeof message.content === 'string' ? message.content : '', message }] }
}

/** Whether a message is a tool's refusal: a ToolMessage with status 'error' (graphs/tool-node.ts). */
export function refused (message: BaseMessage): boolean {
  return message.type === 'tool' && (message as ToolMessage).status === 'error'
}

export function textOf (message: BaseMessage): string {
  return typeof message.content === 'string' ? message.content : message.content.map(c => 'text' in c && typeof c.text === 'string' ? c.text : '').join('')
}

function safeJson (text: string): unknown {
  try { return JSON.parse(text) } catch { return text }
}
