import { z } from 'zod'
import { globalTrend } from '../src/federation/inquiry.ts'
import { defineTool } from './define.ts'

export default defineTool({
  name: 'accuracy_trend',
  description: "The global model after each merged round (round 0: the charter's), scored by my judge's metric on my own validation examples: how the federation's model has gone.",
  schema: z.object({}),
  run: async (_input, { participant, signal }) => globalTrend(participant.state, model => participant.score(model, { signal }))
})
