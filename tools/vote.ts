import { z } from 'zod'
import { BlockId } from '../src/core/records.ts'
import { allowedAccepts, judgementOf } from '../src/federation/acceptance-terms.ts'
import { awaitingMyVote, defineTool } from './define.ts'

export default defineTool({
  name: 'vote',
  description: "Cast my signed vote on a peer's proposal, with a short rationale that goes into the ledger. Only after evaluate; never on my own proposal; once per proposal.",
  schema: z.object({
    proposal: BlockId.describe('The proposal block id.'),
    accept: z.boolean().describe('true to accept the update into the global model, false to reject it.'),
    rationale: z.string().max(500).describe('Why, in one sentence; stored in the signed vote.')
  }),
  // One kind of call per evaluated proposal: its id, and the accepts the charter's judgement leaves me (an unusable update: reject only).
  legal: ({ participant }) => awaitingMyVote(participant).flatMap(({ block }) => {
    const evaluation = participant.evaluation(block)
    if (evaluation === undefined) return []
    const accepts = evaluation.unusable !== undefined ? [false] : allowedAccepts(judgementOf(participant.state.charter?.record.acceptance), evaluation.passes)
    return [z.object({
      proposal: z.literal(block).describe('The proposal I evaluated.'),
      rationale: z.string().min(1).max(200).describe('Why, in one sentence; stored in the signed vote.'),
      accept: z.literal(accepts as [boolean, ...boolean[]]).describe('true to accept the update into the global model, false to reject it.')
    })]
  }),
  run: async ({ proposal, accept, rationale }, { participant }, { decidedBy }) => {
    const vote = await participant.vote(proposal, accept, rationale, { decidedBy })
    return { vote, proposal, accept }
  }
})
