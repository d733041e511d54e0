import { z } from 'zod'
import { BlockId } from '../src/core/records.ts'
import { awaitingMyVote, defineTool } from './define.ts'

export default defineTool({
  name: 'evaluate',
  description: "Fetch a peer's proposed update, verify its content against its CID, and measure the global model with and without it on my own validation data. Required before voting.",
  schema: z.object({
    proposal: BlockId.describe('The proposal block id (from list_proposals or the event).')
  }),
  legal: ({ participant }) => {
    const ids = awaitingMyVote(participant).filter(e => participant.evaluation(e.block) === undefined).map(e => e.block)
    return ids.length === 0 ? [] : [z.object({ proposal: z.enum(ids as [string, ...string[]]).describe('A proposal that awaits my vote.') })]
  },
  run: async ({ proposal }, { participant, nameOf }) => {
    const e = await participant.evaluate(proposal)
    return {
      proposal: e.proposal,
      proposer: nameOf(e.proposer),
      round: e.round,
      before: e.before,
      after: e.after,
      score: e.score,
      passesRule: e.passes,
      unusable: e.unusable ?? null,
      summary: e.summary
    }
  }
})
