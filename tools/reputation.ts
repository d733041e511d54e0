import { z } from 'zod'
import { standings } from '../src/federation/inquiry.ts'
import { defineTool } from './define.ts'

export default defineTool({
  name: 'reputation',
  description: "Each member's record as derived from the ledger, best first: proposals accepted and rejected, votes cast.",
  schema: z.object({}),
  run: async (_input, { participant, nameOf }) => standings(participant.state, nameOf)
})
