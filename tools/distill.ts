import { z } from 'zod'
import { defineTool } from './define.ts'

export default defineTool({
  name: 'distill',
  description: "Ask my teacher model for answers to my questions that have none yet (validation questions first), within my teacher budget. A task learned by distillation can neither train nor judge peers without answers. Answers are cached: a question is never paid for twice.",
  schema: z.object({
    limit: z.number().int().positive().max(100_000).optional().describe('Ask about at most this many questions (default: all that the budget allows).')
  }),
  // How much to ask is the model's call, up to the questions that wait.
  legal: ({ participant }) => {
    const waiting = participant.distillable
    return waiting === 0 ? [] : [z.object({ limit: z.number().int().min(1).max(waiting).optional().describe(`Ask about at most this many of my ${waiting} waiting questions.`) })]
  },
  run: async ({ limit }, { participant, signal }) => {
    const report = await participant.distill({ limit, signal })
    const budget = participant.teacherBudget
    return {
      ...report,
      undistilled: participant.undistilled,
      budgetLeft: budget === undefined || !Number.isFinite(budget) ? null : budget,
      next: 'train (when a round is open) or evaluate (for a peer\'s proposal)'
    }
  }
})
