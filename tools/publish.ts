import { z } from 'zod'
import { defineTool } from './define.ts'

export default defineTool({
  name: 'publish',
  description: 'Publish my trained draft update to the content store (IPFS) as safetensors. Returns its CID; anchor it next to propose it.',
  schema: z.object({}),
  legal: ({ participant }) => participant.draft !== undefined && participant.draft.ref === undefined && !participant.hasProposed(participant.draft.round) ? [z.object({})] : [],
  run: async (_input, { participant }) => {
    const ref = await participant.publishDraft()
    return { cid: ref.cid, sha256: ref.sha256, next: 'anchor' }
  }
})
