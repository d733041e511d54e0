import { z } from 'zod'
import { roundFact } from '../src/federation/inquiry.ts'
import { defineTool } from './define.ts'

export default defineTool({
  name: 'round_result',
  description: "What a round merged into the global model (its anchored checkpoint), what it rejected, and what is still undecided.",
  schema: z.object({
    round: z.number().int().positive().optional().describe('The round; defaults to the last merged one.')
  }),
  run: async ({ round }, { participant, nameOf }) => roundFact(participant.state, nameOf, round ?? Math.max(1, participant.state.global?.round ?? 1))
})
