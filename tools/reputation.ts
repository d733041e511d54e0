import { z } from 'zod'
import { defineTool } from './define.ts'

export default defineTool({
  name: 'reputation',
  description: "Each member's record as derived from the ledger: proposals accepted and rejected, votes cast.",
  schema: z.object({}),
  run: async (_input, { participant, nameOf }) =>
    [...participant.state.members].map(did => ({ member: nameOf(did), did, ...(participant.state.reputation.get(did) ?? { accepted: 0, rejected: 0, votes: 0 }) }))
})
