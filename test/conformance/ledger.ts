import { decodeJWT } from 'did-jwt'
import { describe, expect, it } from 'vitest'
import type { Vote } from '../../src/core/records.ts'
import { createIdentity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import type { Block, Ledger } from '../../src/ledger/index.ts'

export interface LedgerFactory {
  setup: () => Promise<Ledger>
  teardown: (ledger: Ledger) => Promise<void>
  /** Closes and opens the same ledger again (persistent ledgers). */
  reopen?: (ledger: Ledger) => Promise<Ledger>
}

const voter = createIdentity(randomSecretKey())
const vote = (n: number): Vote => ({ type: 'vote', federation: 'test', round: 1, proposal: String(n).padStart(64, 'a'), accept: n % 2 === 0, score: n / 100, rationale: `vote ${n}` })
const records = async (n: number): Promise<string[]> => Promise.all(Array.from({ length: n }, (_, i) => voter.sign(vote(i))))

async function all (ledger: Ledger): Promise<Block[]> {
  const out: Block[] = []
  for await (const b of ledger.blocks()) out.push(b)
  return out
}

/**
 * Every Ledger runs this: the tangle, and the IOTA adapter against a stand-in JSON-RPC
 * node in unit tests; the IOTA adapter against a real node in integration tests.
 * Usage: `ledgerTests('tangle', { setup: () => openTangle({ dir }), teardown: l => l.close() })`.
 */
export function ledgerTests (name: string, factory: LedgerFactory): void {
  describe(`Ledger conformance: ${name}`, () => {
    it('verifies a fresh, empty ledger', async () => {
      const ledger = await factory.setup()
      try {
        expect(await ledger.verify()).toEqual({ ok: true, blocks: 0 })
        expect(await all(ledger)).toEqual([])
      } finally { await factory.teardown(ledger) }
    })

    it('appends a signed record and gets it back by id', async () => {
      const ledger = await factory.setup()
      try {
        const [jwt] = await records(1)
        const block = await ledger.append(jwt as string)
        expect(block).toMatchObject({ seq: 0, parents: [], record: jwt })
        expect(await ledger.get(block.id)).toEqual(block)
        expect(await all(ledger)).toEqual([block])
        expect(await ledger.get('0'.repeat(64))).toBeUndefined()
      } finally { await factory.teardown(ledger) }
    })

    it('iterates in append order, parents before children, two distinct parents once there is history', async () => {
      const ledger = await factory.setup()
      try {
        const jwts = await records(8)
        const appended: Block[] = []
        for (const jwt of jwts) appended.push(await ledger.append(jwt))
        const blocks = await all(ledger)
        expect(blocks).toEqual(appended)
        expect(blocks.map(b => b.record)).toEqual(jwts)
        // From a position on: what a member handles next, in the ledger's order.
        const from5: Block[] = []
        for await (const b of ledger.blocks({ from: 5 })) from5.push(b)
        expect(from5).toEqual(appended.slice(5))
        const position = new Map(blocks.map((b, i) => [b.id, i]))
        blocks.forEach((b, i) => {
          expect(b.seq).toBe(i)
          for (const p of b.parents) expect(position.get(p)).toBeLessThan(i)
          expect(new Set(b.parents).size).toBe(b.parents.length)
          if (i >= 2) expect(b.parents).toHaveLength(2)
        })
        expect(await ledger.verify()).toEqual({ ok: true, blocks: 8 })
      } finally { await factory.teardown(ledger) }
    })

    it('refuses a tampered record (BadSignatureError), a non-JWT (InvalidRecordError) and a second anchoring of the same record', async () => {
      const ledger = await factory.setup()
      try {
        const [jwt] = await records(1) as [string]
        const [h, , s] = jwt.split('.')
        const payload = decodeJWT(jwt).payload as Record<string, unknown>
        const tampered = [h, Buffer.from(JSON.stringify({ ...payload, accept: false })).toString('base64url'), s].join('.')
        await expect(ledger.append(tampered)).rejects.toMatchObject({ name: 'BadSignatureError', code: 'ERR_BAD_SIGNATURE' })
        await expect(ledger.append('not-a-jwt')).rejects.toMatchObject({ name: 'InvalidRecordError', code: 'ERR_INVALID_RECORD' })
        await ledger.append(jwt)
        await expect(ledger.append(jwt)).rejects.toMatchObject({ name: 'DuplicateRecordError', code: 'ERR_DUPLICATE_RECORD' })
        expect((await all(ledger)).map(b => b.record)).toEqual([jwt])
        expect(await ledger.verify()).toEqual({ ok: true, blocks: 1 })
      } finally { await factory.teardown(ledger) }
    })

    it('serialises concurrent appends from many participants', async () => {
      const ledger = await factory.setup()
      try {
        const jwts = await records(20)
        const blocks = await Promise.all(jwts.map(jwt => ledger.append(jwt)))
        expect(blocks.map(b => b.record)).toEqual(jwts)
        expect(new Set(blocks.map(b => b.id)).size).toBe(20)
        expect(blocks.map(b => b.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i))
        expect(new Set((await all(ledger)).map(b => b.record))).toEqual(new Set(jwts))
        expect(await ledger.verify()).toEqual({ ok: true, blocks: 20 })
      } finally { await factory.teardown(ledger) }
    })

    it('orders blocks: each descends from every block appended before it, none from a later one or an unknown one', async () => {
      const ledger = await factory.setup()
      try {
        const blocks: Block[] = []
        for (const jwt of await records(4)) blocks.push(await ledger.append(jwt))
        const [first, , , last] = blocks as [Block, Block, Block, Block]
        for (const [j, later] of blocks.entries()) {
          for (const [i, earlier] of blocks.entries()) expect(await ledger.descends(later.id, earlier.id)).toBe(i < j)
          expect(later.time).toBeGreaterThanOrEqual(Math.max(0, ...blocks.filter(b => later.parents.includes(b.id)).map(b => b.time)))
        }
        const after = await ledger.append((await records(1))[0] as string, { after: first.id })
        expect(await ledger.descends(after.id, first.id)).toBe(true)
        expect(await ledger.descends(after.id, last.id)).toBe(true)
        expect(await ledger.descends(last.id, '0'.repeat(64))).toBe(false)
        expect(await ledger.descends('0'.repeat(64), first.id)).toBe(false)
      } finally { await factory.teardown(ledger) }
    })

    it('honours an aborted signal', async () => {
      const ledger = await factory.setup()
      try {
        const [jwt] = await records(1)
        await expect(ledger.append(jwt as string, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' })
      } finally { await factory.teardown(ledger) }
    })

    if (factory.reopen !== undefined) {
      const reopen = factory.reopen
      it('persists across close and reopen, and re-verifies', async () => {
        let ledger = await factory.setup()
        const jwts = await records(5)
        for (const jwt of jwts) await ledger.append(jwt)
        const before = await all(ledger)
        ledger = await reopen(ledger)
        try {
          expect(await all(ledger)).toEqual(before)
          expect(await ledger.verify()).toEqual({ ok: true, blocks: 5 })
          expect(await ledger.get(before[2]?.id as string)).toEqual(before[2])
          await expect(ledger.append(jwts[0] as string)).rejects.toMatchObject({ name: 'DuplicateRecordError' })
          const [next] = await records(1)
          const block = await ledger.append(next as string)
          expect(block.seq).toBe(5)
          expect(block.parents).toHaveLength(2)
          expect(await ledger.verify()).toEqual({ ok: true, blocks: 6 })
        } finally { await factory.teardown(ledger) }
      })
    }
  })
}
