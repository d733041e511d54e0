import { z } from 'zod'
import { ConfigError } from './errors.ts'

/**
 * How many accepts merge a proposal. Proposers never vote on their own proposal, so with
 * N members at most N − 1 accepts are possible: `count` is absolute (the paper's 4 of 5),
 * `fraction` is of those N − 1 eligible peers (1 = every peer), `majority` is ⌈N/2⌉.
 * Where a charter sets a committee of k, the k members drawn are the eligible peers: the
 * fraction is of k and the majority ⌊k/2⌋ + 1.
 */
export const QuorumRule = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('count'), count: z.number().int().positive() }).strict(),
  z.object({ kind: z.literal('fraction'), fraction: z.number().gt(0).lte(1) }).strict(),
  z.object({ kind: z.literal('majority') }).strict()
])
export type QuorumRule = z.infer<typeof QuorumRule>

/** Who may vote on a proposal: every other member, or the `committee` drawn for it. */
function eligibleVoters (members: number, committee?: number): number {
  return committee ?? members - 1
}

/** Accepts needed among `members` participants (judged by a `committee` of k, if set): a count, ⌈f·(N−1)⌉ (⌈f·k⌉), or ⌈N/2⌉ (⌊k/2⌋ + 1). */
export function requiredAccepts (rule: QuorumRule, members: number, committee?: number): number {
  return requiredOf(rule, eligibleVoters(members, committee))
}

/** Accepts needed among `voters`: a count, ⌈f·voters⌉, or a strict majority of them. */
export function requiredOf (rule: QuorumRule, voters: number): number {
  switch (rule.kind) {
    case 'count': return rule.count
    // Rounded to 1e-9 first, so 0.75 × 4 is 3 and not 3.0000000000000004 → 4.
    case 'fraction': return Math.max(1, Math.ceil(Math.round(rule.fraction * voters * 1e9) / 1e9))
    // ⌈N/2⌉ of N members is a strict majority of the N − 1 who vote, rounded up when N − 1 is even.
    case 'majority': return Math.ceil((voters + 1) / 2)
  }
}

/** Accepts needed among the `counted` voters whose votes still count (excludeRejected): a count larger than they are asks all of them, and never none. */
export function requiredAmongCounted (rule: QuorumRule, counted: number): number {
  return Math.max(1, Math.min(requiredOf(rule, counted), counted))
}

/** Throws when the rule can never be met, since a proposer does not vote on its own update (and only its committee does). */
export function assertReachable (rule: QuorumRule, members: number, committee?: number): void {
  const required = requiredAccepts(rule, members, committee)
  const voters = eligibleVoters(members, committee)
  if (committee !== undefined && (committee < 1 || committee > members - 1)) {
    throw new ConfigError(`a committee of ${committee} cannot be drawn from ${members} members: it holds 1 to ${members - 1} of the proposer's peers`)
  }
  if (required > voters) {
    const who = committee === undefined ? `${members} members: proposers do not vote on their own proposals` : `a committee of ${committee}: only its members vote`
    throw new ConfigError(`a quorum of ${required} accepts can never be met with ${who}, so at most ${voters} accepts are possible`)
  }
}

/** Parses `4`, `0.75` or `majority` (CLI and config shorthand). */
export function parseQuorum (text: string): QuorumRule {
  const t = text.trim()
  const candidate = t === 'majority'
    ? { kind: 'majority' }
    : /^\d+$/.test(t) ? { kind: 'count', count: Number(t) } : /^0?\.\d+$/.test(t) ? { kind: 'fraction', fraction: Number(t) } : undefined
  const result = QuorumRule.safeParse(candidate)
  if (!result.success) throw new ConfigError(`quorum "${text}" is not a count (4), a fraction of the peers (0.75) or "majority"`)
  return result.data
}
