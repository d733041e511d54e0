import { z } from 'zod'
import { ConfigError } from './errors.ts'

/**
 * How many accepts merge a proposal. Proposers never vote on their own proposal, so with
 * N members at most N − 1 accepts are possible: `count` is absolute (the paper's 4 of 5),
 * `fraction` is of those N − 1 eligible peers (1 = every peer), `majority` is ⌈N/2⌉.
 */
export const QuorumRule = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('count'), count: z.number().int().positive() }).strict(),
  z.object({ kind: z.literal('fraction'), fraction: z.number().gt(0).lte(1) }).strict(),
  z.object({ kind: z.literal('majority') }).strict()
])
export type QuorumRule = z.infer<typeof QuorumRule>

/** Accepts needed among `members` participants: a count, ⌈f·(N−1)⌉, or ⌈N/2⌉. */
export function requiredAccepts (rule: QuorumRule, members: number): number {
  switch (rule.kind) {
    case 'count': return rule.count
    // Rounded to 1e-9 first, so 0.75 × 4 is 3 and not 3.0000000000000004 → 4.
    case 'fraction': return Math.max(1, Math.ceil(Math.round(rule.fraction * (members - 1) * 1e9) / 1e9))
    case 'majority': return Math.ceil(members / 2)
  }
}

/** Throws when the rule can never be met, since a proposer does not vote on its own update. */
export function assertReachable (rule: QuorumRule, members: number): void {
  const required = requiredAccepts(rule, members)
  if (required > members - 1) {
    throw new ConfigError(`a quorum of ${required} accepts can never be met with ${members} members: proposers do not vote on their own proposals, so at most ${members - 1} accepts are possible`)
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
