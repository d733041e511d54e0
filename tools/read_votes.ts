import { z } from 'zod'
import { proposalFacts } from '../src/federation/inquiry.ts'
import type { FederationState } from '../src/federation/state.ts'
import { defineTool, type ToolDefinition } from './define.ts'

const description = "Proposals with every signed vote on them and its rationale, my own vote, and the federation's decision. Use it to explain how and why I (or a peer) voted."

/** Its arguments; null or absent: any. Narrowed to the values the record holds for models that answer under a schema. */
const schemaOf = (values?: { proposals: [string, ...string[]], rounds: [number, ...number[]], members: [string, ...string[]] }) => z.object({
  proposal: (values === undefined ? z.string().min(8).max(128) : z.enum(values.proposals)).nullish().describe('A proposal id, or its first 8 or more characters; null for any.'),
  round: (values === undefined ? z.number().int().positive() : z.literal(values.rounds)).nullish().describe('Only proposals of this round; null for any.'),
  proposer: (values === undefined ? z.string().max(64) : z.enum(values.members)).nullish().describe("Only proposals by this member, e.g. 'agent-3'; null for any.")
})

const readVotes = defineTool({
  name: 'read_votes',
  description,
  schema: schemaOf(),
  run: async (query, { participant, nameOf }) => proposalFacts(participant.state, { me: participant.did, nameOf }, query)
})
export default readVotes

/** read_votes whose arguments can only be the proposals, rounds and members the record holds now. */
export function readVotesNow (state: Pick<FederationState, 'proposals' | 'rounds'>, members: readonly string[]): ToolDefinition {
  const [proposals, rounds] = [[...state.proposals.keys()], [...state.rounds.keys()].sort((a, b) => a - b)]
  if (proposals.length === 0 || rounds.length === 0 || members.length === 0) return readVotes as ToolDefinition
  return { ...readVotes, schema: schemaOf({ proposals: proposals as [string, ...string[]], rounds: rounds as [number, ...number[]], members: [...members] as [string, ...string[]] }) } as ToolDefinition
}
