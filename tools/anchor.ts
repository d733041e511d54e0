import { z } from 'zod'
import { defineTool, short } from './define.ts'

export default defineTool({
  name: 'anchor',
  description: 'Sign a proposal of my published draft, anchor it on the ledger and announce it to the federation. Peers then evaluate and vote on it.',
  schema: z.object({}),
  legal: ({ participant }) => participant.draft?.ref !== undefined && !participant.hasProposed(participant.draft.round) ? [z.object({})] : [],
  run: async (_input, { participant }) => {
    const proposal = await participant.proposeDraft()
    return { proposal, short: short(proposal), status: 'proposed; waiting for votes' }
  }
})
