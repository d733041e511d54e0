import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { writeLongLedger } from '../../bench/long-ledger.ts'
import { tempDir } from './helpers.ts'

/** Every signature check node:crypto makes: the cost of an audit, counted rather than timed. */
const checks = vi.hoisted(() => ({ count: 0 }))
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>()
  return {
    ...actual,
    verify: (...args: Parameters<typeof actual.verify>) => {
      checks.count++
      return actual.verify(...args)
    }
  }
})

describe('the audit of a run directory', () => {
  it('checks each signature once (opening, re-verifying and replaying the ledger each read every record)', async () => {
    const dir = join(await tempDir(), 'run')
    const made = await writeLongLedger(dir, { records: 70, members: 3, seed: 3 })
    // A fresh copy of the code: a process that has verified none of these records yet.
    vi.resetModules()
    const { auditRunDir } = await import('../../src/cli/audit-dir.ts')
    checks.count = 0
    const report = await auditRunDir(dir)
    expect(report).toMatchObject({ ok: true, records: 70, modelHash: made.modelHash, firstFailure: null, rejected: [] })
    // Every record, and each member's signature on the run's head.
    expect(checks.count).toBe(70 + 3)
  })
})
