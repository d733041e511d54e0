import { z } from 'zod'
import { defineTool } from './define.ts'

export default defineTool({
  name: 'federation_status',
  description: 'Where the federation stands: open round, global model, members, quorum, committee size, and my draft.',
  schema: z.object({}),
  run: async (_input, { participant, nameOf }) => {
    const { state } = participant
    const draft = participant.draft
    return {
      me: participant.name,
      federation: state.charter?.record.federation ?? null,
      openRound: state.charter === undefined ? null : state.currentRound(),
      globalModel: participant.globalModel?.ref.sha256 ?? null,
      globalRound: state.global?.round ?? 0,
      members: [...state.members].map(nameOf),
      quorum: state.charter?.record.quorum ?? null,
      /** k peers judge each proposal (null: every peer does). */
      committee: state.charter?.record.committee ?? null,
      votesRequired: state.charter === undefined ? null : state.required,
      myDraft: draft === undefined ? null : { round: draft.round, published: draft.ref !== undefined }
    }
  }
})
