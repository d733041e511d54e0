import { copyFile, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { createIdentity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { openTangle } from '../../src/ledger/tangle.ts'
import { vote } from './helpers.ts'

/** How many records the ledger verified: counted rather than timed. */
const records = vi.hoisted(() => ({ verified: 0 }))
vi.mock('../../src/identity/index.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/identity/index.ts')>()
  return {
    ...actual,
    verifyRecord: async (...args: Parameters<typeof actual.verifyRecord>) => {
      records.verified++
      return actual.verifyRecord(...args)
    }
  }
})

const tempDir = async (): Promise<string> => mkdtemp(join(tmpdir(), 'conclave-reverify-'))
const me = createIdentity(randomSecretKey())

async function tangleOf (n: number, from: number): Promise<string> {
  const dir = await tempDir()
  const ledger = await openTangle({ dir, difficulty: 0 })
  for (let i = 0; i < n; i++) await ledger.append(await me.sign(vote(from + i)))
  await ledger.close()
  return dir
}

describe('re-verifying a tangle', () => {
  it('verifies each record once when opening, and none again for the blocks it holds unchanged', async () => {
    const dir = await tangleOf(6, 0)
    records.verified = 0
    const ledger = await openTangle({ dir })
    expect(records.verified).toBe(6)
    expect(await ledger.verify()).toEqual({ ok: true, blocks: 6 })
    expect(records.verified).toBe(6)
    await ledger.close()
  })

  it('verifies every block of a file that no longer holds its blocks, and reports that it diverged', async () => {
    const dir = await tangleOf(6, 0)
    const other = await tangleOf(6, 100)
    const ledger = await openTangle({ dir })
    await copyFile(join(other, 'tangle.jsonl'), join(dir, 'tangle.jsonl'))
    records.verified = 0
    expect(await ledger.verify()).toMatchObject({ ok: false, failure: { seq: 0, error: { name: 'LedgerCorruptError' } } })
    expect(records.verified).toBe(6)
    await ledger.close()
  })
})
