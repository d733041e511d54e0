import { z } from 'zod'
import { peekRecord } from '../src/identity/index.ts'
import { defineTool } from './define.ts'

export default defineTool({
  name: 'read_ledger',
  description: 'Read the latest records anchored on the ledger (type, round, issuer; for votes the proposal and accept).',
  schema: z.object({
    last: z.number().int().min(1).max(50).optional().describe('How many of the latest records; default 10.'),
    type: z.enum(['charter', 'proposal', 'vote', 'decision', 'checkpoint']).optional().describe('Only records of this type.')
  }),
  run: async ({ last, type }, { ledger, nameOf }) => {
    const rows: unknown[] = []
    for await (const block of ledger.blocks()) {
      const { issuer, record } = peekRecord(block.record)
      if (record === null || (type !== undefined && record.type !== type)) continue
      // A vote's rationale is its signer's free text: it stays out of what a judging model reads
      // (read_votes gives it to researchers), so a peer cannot write the judge's instructions.
      rows.push({
        block: block.id,
        type: record.type,
        round: record.round,
        issuer: issuer === null ? null : nameOf(issuer),
        ...(record.type === 'vote' ? { proposal: record.proposal, accept: record.accept } : {}),
        ...(record.type === 'decision' ? { proposal: record.proposal, accepted: record.accepted } : {})
      })
    }
    return rows.slice(-(last ?? 10))
  }
})
