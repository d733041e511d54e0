import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createIdentity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import type { Block } from '../../src/ledger/index.ts'
import { leadingZeroBits, openTangle, tipSelection } from '../../src/ledger/tangle.ts'
import { ledgerTests } from '../conformance/ledger.ts'

const dirs = new WeakMap<object, string>()
ledgerTests('tangle', {
  setup: async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-tangle-'))
    const ledger = await openTangle({ dir, difficulty: 4 })
    dirs.set(ledger, dir)
    return ledger
  },
  teardown: async (ledger) => { await ledger.close() },
  reopen: async (ledger) => {
    const dir = dirs.get(ledger) as string
    await ledger.close()
    const again = await openTangle({ dir })
    dirs.set(again, dir)
    return again
  }
})

const fake = (id: string, seq: number, parents: string[] = []): Block => ({ id, seq, parents, record: 'r', time: 1, pow: 0 })

describe('tangle', () => {
  it('tip selection: none at genesis, then the two oldest tips, never the same block twice', () => {
    const a = fake('a', 0)
    expect(tipSelection([], new Set())).toEqual([])
    expect(tipSelection([a], new Set(['a']))).toEqual(['a'])
    const b = fake('b', 1, ['a'])
    expect(tipSelection([a, b], new Set(['b']))).toEqual(['b', 'a'])
    const c = fake('c', 2, ['b', 'a'])
    const d = fake('d', 3, ['c', 'b'])
    expect(tipSelection([a, b, c, d], new Set(['c', 'd']))).toEqual(['c', 'd'])
    expect(tipSelection([a, b, c, d], new Set(['b', 'c', 'd']))).toEqual(['b', 'c'])
  })

  it('mines proof of work to the header\'s difficulty', async () => {
    const ledger = await openTangle({ dir: await mkdtemp(join(tmpdir(), 'conclave-tangle-')), difficulty: 10 })
    const who = createIdentity(randomSecretKey())
    const block = await ledger.append(await who.sign({ type: 'vote', federation: 'f', round: 1, proposal: 'a'.repeat(64), accept: true, score: 0, rationale: '' }))
    expect(leadingZeroBits(block.id)).toBeGreaterThanOrEqual(10)
    expect(leadingZeroBits('0f')).toBe(4)
    expect(leadingZeroBits('00')).toBe(8)
    expect(leadingZeroBits('1')).toBe(3)
    await ledger.close()
  })

  it('catches a flip of any single byte of the file, names the block, and refuses to extend a damaged file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-tangle-'))
    const ledger = await openTangle({ dir, difficulty: 2 })
    const who = createIdentity(randomSecretKey())
    for (let i = 0; i < 3; i++) await ledger.append(await who.sign({ type: 'vote', federation: 'f', round: 1, proposal: String(i).padStart(64, '0'), accept: true, score: 0, rationale: '' }))
    await ledger.close()
    const file = join(dir, 'tangle.jsonl')
    const original = await readFile(file)
    const lineOf = (at: number): number => original.subarray(0, at).toString().split('\n').length - 1
    const step = Math.max(1, Math.floor(original.length / 300))
    for (let at = 0; at < original.length; at += step) {
      for (const bit of [0x01, 0x20]) {
        const flipped = Buffer.from(original)
        flipped[at] = (flipped[at] as number) ^ bit
        await writeFile(file, flipped)
        const damaged = await openTangle({ dir })
        const result = await damaged.verify()
        expect(result.ok, `flip 0x${bit.toString(16)} at byte ${at}`).toBe(false)
        if (!result.ok) expect(result.failure.seq).toBe(Math.max(0, lineOf(at) - 1))
        await expect(damaged.append(await who.sign({ type: 'vote', federation: 'f', round: 1, proposal: 'f'.repeat(64), accept: true, score: 0, rationale: '' }))).rejects.toMatchObject({ name: 'LedgerCorruptError' })
        await damaged.close()
      }
    }
    await writeFile(file, original)
    expect(await (await openTangle({ dir })).verify()).toEqual({ ok: true, blocks: 3 })
  })
})
