import { z } from 'zod'
import { runStatus } from '../src/federation/inquiry.ts'
import { defineTool } from './define.ts'

export default defineTool({
  name: 'federation_status',
  description: 'Where the federation stands: open round (or that the run has ended), global model, members, quorum, committee size, my draft and my teacher spend.',
  schema: z.object({}),
  run: async (_input, { participant, nameOf, plannedRounds }) => {
    const { state } = participant
    const draft = participant.draft
    const budget = participant.teacherBudget
    return {
      me: participant.name,
      ...runStatus(state, plannedRounds),
      members: [...state.members].map(nameOf),
      quorum: state.charter?.record.quorum ?? null,
      /** k peers judge each proposal (null: every peer does). */
      committee: state.charter?.record.committee ?? null,
      votesRequired: state.charter === undefined ? null : state.required,
      myDraft: draft === undefined ? null : { round: draft.round, published: draft.ref !== undefined },
      teacher: participant.teacherUse === undefined ? null : { ...participant.teacherUse, budgetLeft: budget === undefined || !Number.isFinite(budget) ? null : budget }
    }
  }
})
