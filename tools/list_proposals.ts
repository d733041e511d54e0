import { z } from 'zod'
import { defineTool } from './define.ts'

export default defineTool({
  name: 'list_proposals',
  description: 'List proposals of a round with their proposer, whether I may vote on it (I am one of its judges), votes so far, my evaluation and vote, and the decision.',
  schema: z.object({
    round: z.number().int().positive().optional().describe('Round to list; defaults to the open round.'),
    undecidedOnly: z.boolean().optional().describe('Only proposals without a decision yet.')
  }),
  run: async ({ round, undecidedOnly }, { participant, nameOf }) => {
    const r = round ?? participant.state.currentRound()
    const ids = participant.state.rounds.get(r)?.proposals ?? []
    return ids.map(id => participant.state.proposals.get(id)).filter(e => e !== undefined)
      .filter(e => undecidedOnly !== true || e.decision === undefined)
      .map(e => ({
        proposal: e.block,
        proposer: nameOf(e.signed.issuer),
        mine: e.signed.issuer === participant.did,
        mayVote: participant.state.judges(e.block).includes(participant.did),
        votes: { accept: [...e.votes.values()].filter(v => v.signed.record.accept).length, reject: [...e.votes.values()].filter(v => !v.signed.record.accept).length },
        myEvaluation: participant.evaluation(e.block)?.summary ?? null,
        myVote: participant.myVote(e.block)?.accept ?? null,
        decision: e.decision === undefined ? null : (e.decision.record.accepted ? 'accepted' : 'rejected')
      }))
  }
})
