import { BaseChatModel, type BaseChatModelParams, type BindToolsInput } from '@langchain/core/language_models/chat_models'
import type { AIMessage, BaseMessage, ToolMessage } from '@langchain/core/messages'
import type { ChatResult } from '@langchain/core/outputs'
import type { ProposalFact, RoundFact, RunStatus, Standing, Trend, TrendPoint } from '../federation/inquiry.ts'
import { refused, stepResult, textOf, type PolicyStep } from './policy.ts'

/**
 * The chat policy: a deterministic "model" for researchers' common questions. It reads the
 * question, calls the one read-only tool that holds the answer (the same tools a language
 * model gets), and words the tool's result. It never states what a tool did not return, so
 * its answers are the record's. Questions it does not recognise get what it can answer.
 *
 *   why did you vote on / reject agent-3's round 1 update, or <proposal id>  → read_votes
 *   what did round 2 merge                                                   → round_result
 *   how is accuracy trending                                                 → accuracy_trend
 *   who has the best reputation                                              → reputation
 *   which tools do you have                                                  → my_tools
 *   status, teacher spend                                                    → federation_status
 */
export function chatPolicyStep (messages: readonly BaseMessage[]): PolicyStep {
  const start = messages.findLastIndex(m => m.type === 'human')
  if (start < 0) return { reply: HELP }
  const question = textOf(messages[start] as BaseMessage)
  const intent = intentOf(question)
  if (intent === undefined) return { reply: `I answer from the record. ${HELP}` }
  // Only my own call's result answers: a model before me may have called the same tool with other arguments.
  const mine = new Set(messages.slice(start + 1).flatMap(m => (m as AIMessage).tool_calls ?? [])
    .filter(c => c.name === intent.tool && JSON.stringify(c.args) === JSON.stringify(intent.args)).map(c => c.id))
  const result = messages.slice(start + 1).findLast(m => m.type === 'tool' && mine.has((m as ToolMessage).tool_call_id))
  if (result === undefined) return { tool: intent.tool, args: intent.args }
  if (refused(result)) return { reply: `I could not read that from the record: ${textOf(result).slice(0, 300)}` }
  return { reply: word(intent, JSON.parse(textOf(result)) as unknown) }
}

const HELP = 'Ask me why I voted on a proposal (name its proposer and round, e.g. "agent-3 round 1", or give its id), how accuracy is trending, who has the best reputation, what a round merged, which tools I have, the federation\'s status, or my teacher spend.'

type Intent = { tool: string, args: Record<string, unknown>, topic?: 'teacher' }

/** Which tool holds the answer to a question, and with which arguments. */
export function intentOf (question: string): Intent | undefined {
  const q = question.toLowerCase()
  const round = Number(/\bround\s*(\d+)/.exec(q)?.[1] ?? Number.NaN) // round 0 is the charter's: no proposals, no merge
  const proposer = /\bagent-\d+\b/.exec(q)?.[0]
  const proposal = question.split(/[^\w:-]+/).find(w => w.length >= 8 && /\d/.test(w) && !/^agent-\d+$/i.test(w) && !/^round\d+$/i.test(w))
  const withRound = Number.isNaN(round) || round < 1 || round > Number.MAX_SAFE_INTEGER ? {} : { round }
  if (/\btools?\b/.test(q)) return { tool: 'my_tools', args: {} }
  if (/\bmerg/.test(q)) return { tool: 'round_result', args: withRound }
  if (/\b(why|vote[ds]?|voting|accept(ed)?|reject(ed)?|judge[ds]?)\b/.test(q) || proposal !== undefined) {
    return { tool: 'read_votes', args: { ...withRound, ...(proposer === undefined ? {} : { proposer }), ...(proposal === undefined ? {} : { proposal }) } }
  }
  if (/\b(accura\w*|trend\w*|learn\w*|improv\w*|progress\w*|perform\w*|f1|score)\b/.test(q)) return { tool: 'accuracy_trend', args: {} }
  if (/\b(reputation|reputable|best|trust\w*|standing|reliable|leader\w*)\b/.test(q)) return { tool: 'reputation', args: {} }
  if (/\b(teacher|budget|spen[dt]|distil\w*|tokens?)\b/.test(q)) return { tool: 'federation_status', args: {}, topic: 'teacher' }
  if (/\b(status|round|doing|where|state|ended|finished|over|open)\b/.test(q)) return { tool: 'federation_status', args: {} }
  return undefined
}

/** A proposal id as people can quote it back (any 8 or more leading characters find it). */
export const quoteId = (id: string): string => id.slice(0, 12)

function word (intent: Intent, result: unknown): string {
  switch (intent.tool) {
    case 'read_votes': return wordVotes(result as ProposalFact[], intent.args)
    case 'round_result': return wordRound(result as RoundFact)
    case 'accuracy_trend': return wordTrend(result as Trend)
    case 'reputation': return wordStandings(result as Standing[])
    case 'my_tools': return wordTools(result as { tools: string[], calls: Record<string, number>, readOnly: string[] })
    default: return intent.topic === 'teacher' ? wordTeacher(result as { teacher: TeacherSpend | null }) : wordStatus(result as RunStatus & { members: string[] })
  }
}

const head = (p: ProposalFact): string => `${p.proposer}'s round ${p.round} update (${quoteId(p.proposal)})`
const decided = (p: ProposalFact): string => p.decision === null
  ? 'The federation has not decided yet.'
  : `The federation ${p.decision.accepted ? 'accepted' : 'rejected'} it (${p.decision.accepts} accepts, ${p.decision.rejects} rejects; ${p.decision.required} needed).`

function wordVotes (facts: ProposalFact[], asked: Record<string, unknown>): string {
  const named = asked.proposal !== undefined || asked.proposer !== undefined
  if (named) {
    const target = facts.findLast(f => f.myVote !== null) ?? facts.at(-1)
    if (target === undefined) return `The ledger holds no proposal ${[asked.proposer, asked.round === undefined ? undefined : `in round ${String(asked.round)}`, asked.proposal].filter(Boolean).join(' ')}.`
    if (target.mine) return `${head(target)} is my own proposal; I do not vote on my own updates. ${decided(target)}`
    if (target.myVote === null) return `I have not voted on ${head(target)}. ${decided(target)}`
    return `I voted to ${target.myVote.accept ? 'accept' : 'reject'} ${head(target)}. My signed rationale: "${target.myVote.rationale}". ${decided(target)}`
  }
  const mine = facts.filter(f => f.myVote !== null)
  if (mine.length === 0) return `I have voted on no proposal${asked.round === undefined ? '' : ` in round ${String(asked.round)}`} yet.`
  const list = mine.map(f => `${f.myVote?.accept === true ? 'accepted' : 'rejected'} ${head(f)}`).join('; ')
  return `I voted on ${mine.length} proposals: ${list}. Ask about one by its proposer and round, or its id, and I will give my signed rationale.`
}

function wordRound (r: RoundFact): string {
  const list = (xs: RoundFact['merged']): string => xs.length === 0 ? 'none' : xs.map(x => `${x.proposer}'s (${quoteId(x.proposal)})`).join(', ')
  if (r.status === 'not started') return `Round ${r.round} has not started: nothing was proposed in it.`
  if (r.status === 'open') return `Round ${r.round} is still open: nothing merged yet. Accepted or rejected so far: rejected ${list(r.rejected)}; undecided ${list(r.undecided)}.`
  return `Round ${r.round} merged ${r.merged.length} update${r.merged.length === 1 ? '' : 's'} into the global model ${r.model?.sha256.slice(0, 12)}: ${list(r.merged)}. Rejected: ${list(r.rejected)}.`
}

function wordTrend ({ metric, examples, points }: Trend): string {
  if (points.length === 0) return 'There is no global model yet: the federation has no charter.'
  const first = points[0] as TrendPoint
  const last = points.at(-1) as TrendPoint
  const steps = points.map(p => `round ${p.round}${p.round === 0 ? ' (charter)' : ''} ${p.score.toFixed(4)}`).join(', ')
  const change = last.score - first.score
  const way = points.length === 1 ? 'no round merged yet' : change > 0 ? `up ${change.toFixed(4)} since the charter` : change < 0 ? `down ${(-change).toFixed(4)} since the charter` : 'unchanged since the charter'
  return `The global model's ${metric} on my ${examples} validation examples: ${steps}; ${way}.`
}

function wordStandings (standings: Standing[]): string {
  const top = standings[0]
  if (top === undefined) return 'There is no charter yet, so no members and no reputations.'
  const same = (s: Standing): boolean => s.accepted === top.accepted && s.rejected === top.rejected && s.votes === top.votes
  const best = standings.filter(same)
  const of = (s: Standing): string => `${s.accepted} proposals accepted, ${s.rejected} rejected, ${s.votes} votes cast`
  const lead = best.length === 1 ? `${top.member} has the best reputation: ${of(top)}.` : `${best.map(s => s.member).join(' and ')} share the best reputation: ${of(top)} each.`
  const rest = standings.filter(s => !same(s))
  return rest.length === 0 ? lead : `${lead} Then ${rest.map(s => `${s.member} (${of(s)})`).join('; ')}.`
}

function wordTools ({ tools, calls, readOnly }: { tools: string[], calls: Record<string, number>, readOnly: string[] }): string {
  const used = Object.entries(calls).filter(([, n]) => n > 0).map(([t, n]) => `${t} ${n}×`)
  return `My tools: ${tools.join(', ')}.${used.length === 0 ? '' : ` Calls so far: ${used.join(', ')}.`} To answer you I read the record with: ${readOnly.join(', ')}.`
}

function wordStatus (s: RunStatus & { members: string[] }): string {
  if (s.federation === null) return 'There is no charter on the ledger yet: the federation has not started.'
  const model = `the global model is ${s.globalModel?.slice(0, 12)}`
  if (s.finished) return `The run has ended: all ${s.plannedRounds} planned rounds are merged and ${model}. Federation ${s.federation}, members ${s.members.join(', ')}.`
  return `Round ${s.openRound} is open${s.plannedRounds === null ? '' : ` (of ${s.plannedRounds} planned)`}; ${s.mergedRounds} round${s.mergedRounds === 1 ? '' : 's'} merged so far and ${model}. Federation ${s.federation}, members ${s.members.join(', ')}.`
}

interface TeacherSpend { asked: number, cached: number, tokens: number, undistilled: number, budgetLeft: number | null }

function wordTeacher ({ teacher }: { teacher: TeacherSpend | null }): string {
  if (teacher === null) return 'I have no teacher: this task learns from labels, so I have spent nothing.'
  return `My teacher answered ${teacher.asked} questions (${teacher.cached} more from the cache) for ${teacher.tokens} tokens; ${teacher.undistilled} of my questions are still unanswered; budget left: ${teacher.budgetLeft === null ? 'no cap' : `${teacher.budgetLeft} tokens`}.`
}

/** The chat policy as a chat model: the fallback for any model, and the answerer when none is configured. */
export class ChatPolicyChatModel extends BaseChatModel {
  constructor (fields: BaseChatModelParams = {}) {
    super(fields)
  }

  _llmType (): string { return 'conclave-chat-policy' }

  override bindTools (_tools: BindToolsInput[]): this {
    return this // it knows the read-only tools by name
  }

  async _generate (messages: BaseMessage[]): Promise<ChatResult> {
    return stepResult(chatPolicyStep(messages), 'chat-policy')
  }
}
