import { z } from 'zod'
import { BlockId } from '../src/core/records.ts'
import { defineTool } from './define.ts'

export default defineTool({
  name: 'vote',
  description: "Cast my signed vote on a peer's proposal, with a short rationale that goes into the ledger. Only after evaluate; never on my own proposal; once per proposal.",
  schema: z.object({
    proposal: BlockId.describe('The proposal block id.'),
    accept: z.boolean().describe('true to accept the update into the global model, false to reject it.'),
    rationale: z.string().max(500).describe('Why, in one sentence; stored in the signed vote.')
  }),
  run: async ({ proposal, accept, rationale }, { participant, judgement }, { decidedBy }) => {
    const vote = await participant.vote(proposal, accept, rationale, { decidedBy, judgement: judgement ?? 'rule' })
    return { vote, proposal, accept }
  }
})
