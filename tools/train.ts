import { z } from 'zod'
import { defineTool } from './define.ts'

export default defineTool({
  name: 'train',
  description: 'Train the shared model on my own data for the open round, starting from the current global model. Keeps the update (Δw) as my draft; publish and anchor it to propose it.',
  schema: z.object({}),
  // Once per round: not after my proposal, nor while this round's draft waits to be published or anchored.
  legal: ({ participant }) => {
    const round = participant.state.charter === undefined ? 0 : participant.state.currentRound()
    return round === 0 || participant.hasProposed(round) || participant.draft?.round === round ? [] : [z.object({})]
  },
  run: async (_input, { participant }) => {
    const draft = await participant.train(participant.state.currentRound())
    return { round: draft.round, numSamples: draft.numSamples, loss: Number(draft.loss.toFixed(6)), next: 'publish' }
  }
})
