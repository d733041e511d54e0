import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { MemberReport } from '../../src/federation/member.ts'
import { recorderInTurn } from '../../src/federation/tally.ts'
import { copyOf, dids, start, threeMembers, until, type Member } from './members.ts'
import { uniqueName } from './synapse.ts'

/** Short, so that the rounds the dead member holds up end within the test: a window for its missing votes, one more for its turn to record. */
const WINDOW_SECONDS = 30

/**
 * A member whose machine dies for good is the recorder of a round nobody else could record
 * (before the standbys, its peers stopped with NoCheckpointError). Tested in one process by
 * test/federation/silent-recorder.test.ts; here across member processes, each with its own
 * copy of the ledger and its own wall clock, as the README's deployment runs.
 */
describe('a member process killed for good before its turn to record (Synapse + kubo)', () => {
  it('the two others finish: the next member in turn records its round a window late, and both end at one model their copies audit', { timeout: 600_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'conclave-member-crash-'))
    const configs = await threeMembers(root, uniqueName('crash'), 'autopilot', { rounds: 2, windowSeconds: WINDOW_SECONDS, hostile: false })
    const members = await dids(configs)
    const sorted = [...members].sort()
    const victim = members.indexOf(recorderInTurn(sorted, 1))
    const standby = recorderInTurn(sorted, 2)
    const others = [1, 2, 3].filter(n => n !== victim + 1)
    const running = configs.map(c => start(c))
    const survivors = running.filter((_, i) => i !== victim)
    try {
      await until('the charter is on a copy', async () => (await copyOf(root, others[0] as number)).some(b => b.type === 'charter') ? true : undefined, running, 180)
      const dead = running[victim] as Member
      dead.child.kill('SIGKILL')
      await dead.exited
      const reports = await until('both others write their reports', async () => Promise.all(others.map(async n => JSON.parse(await readFile(join(root, `agent-${n}`, 'report.json'), 'utf8')) as MemberReport)), survivors)
      for (const report of reports) {
        expect(report.rounds.map(r => r.round)).toEqual([1, 2])
        expect(report.audit.ok).toBe(true)
      }
      expect(new Set(reports.map(r => r.audit.modelHash)).size).toBe(1)
      for (const n of others) {
        const copy = await copyOf(root, n)
        const recorders = (round: number): Array<string | null> => [...new Set(copy.filter(b => (b.type === 'decision' || b.type === 'checkpoint') && b.round === round).map(b => b.issuer))]
        // Round 1 was the dead member's to record: its standby did, decisions and checkpoint; round 2's recorder recorded its own.
        expect(recorders(1)).toEqual([standby])
        expect(recorders(2)).toEqual([recorderInTurn(sorted, 2)])
        expect(copy.filter(b => b.type === 'checkpoint').map(b => b.round)).toEqual([1, 2])
      }
    } finally {
      for (const m of running) m.child.kill('SIGTERM')
      await Promise.all(running.map(async m => m.exited))
    }
  })
})
