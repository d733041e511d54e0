import { z } from 'zod'
import { ConclaveError } from '../src/core/errors.ts'
import type { SignedRecord } from '../src/core/records.ts'
import { verifyRecord } from '../src/identity/index.ts'
import { defineTool } from './define.ts'

export default defineTool({
  name: 'read_ledger',
  description: 'Read the latest records anchored on the ledger (type, round, issuer; for votes the proposal and accept).',
  schema: z.object({
    last: z.number().int().min(1).max(50).optional().describe('How many of the latest records; default 10.'),
    type: z.enum(['charter', 'proposal', 'vote', 'decision', 'checkpoint']).optional().describe('Only records of this type.')
  }),
  run: async ({ last, type }, { participant, ledger, nameOf }) => {
    const members = new Set(participant.state.charter?.record.members ?? [])
    const rows: unknown[] = []
    for await (const block of ledger.blocks()) {
      // Only what a member signed: on a ledger anyone may anchor to (IOTA), an unsigned record's claims would be anyone's words.
      const signed = await membersRecord(block.record, members, block.time)
      if (signed === undefined || (type !== undefined && signed.record.type !== type)) continue
      const { issuer, record } = signed
      // A vote's rationale is its signer's free text: it stays out of what a judging model reads
      // (read_votes gives it to researchers), so a peer cannot write the judge's instructions.
      rows.push({
        block: block.id,
        type: record.type,
        round: record.round,
        issuer: nameOf(issuer),
        ...(record.type === 'vote' ? { proposal: record.proposal, accept: record.accept } : {}),
        ...(record.type === 'decision' ? { proposal: record.proposal, accepted: record.accepted } : {})
      })
    }
    return rows.slice(-(last ?? 10))
  }
})

/** The record in `jwt` when one of `members` signed it (the charter: its founder, before anyone is a member); undefined otherwise. */
async function membersRecord (jwt: string, members: ReadonlySet<string>, time: number): Promise<SignedRecord | undefined> {
  try {
    return await verifyRecord(jwt, { members: members.size === 0 ? undefined : members, now: time })
  } catch (err) {
    if (err instanceof ConclaveError) return undefined
    throw err
  }
}
