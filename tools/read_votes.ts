import { z } from 'zod'
import { proposalFacts } from '../src/federation/inquiry.ts'
import { defineTool } from './define.ts'

export default defineTool({
  name: 'read_votes',
  description: "Proposals with every signed vote on them and its rationale, my own vote, and the federation's decision. Use it to explain how and why I (or a peer) voted.",
  schema: z.object({
    proposal: z.string().min(8).max(128).optional().describe('A proposal id, or its first 8 or more characters.'),
    round: z.number().int().positive().optional().describe('Only proposals of this round.'),
    proposer: z.string().max(64).optional().describe("Only proposals by this member, e.g. 'agent-3'.")
  }),
  run: async (query, { participant, nameOf }) => proposalFacts(participant.state, { me: participant.did, nameOf }, query)
})
