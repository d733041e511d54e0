import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { MemberReport } from '../../src/federation/member.ts'
import { copyOf, dids, reportsOf, start, threeMembers, until, type Member } from './members.ts'
import { uniqueName } from './synapse.ts'

/** Far longer than the test may take: a round that closes did so because every vote was in, the lost member's too. */
const WINDOW_SECONDS = 1800

/**
 * A member's machine loses its directory (disk, ledger copy, sync token) after the charter. An
 * empty copy made now cannot take the charter: it refuses one from well before it was made, as
 * an earlier run's replayed (src/ledger/copy-made.ts). The way back the README gives: a copy of
 * a peer's `ledger/` folder, whose every block the copy checks again as it opens, and whose gaps
 * it asks the room for.
 */
describe('a member process whose directory is lost after the charter (Synapse + kubo)', () => {
  it('starts again from a copy of a peer\'s ledger folder: the rounds close with its votes, and all three end at one model their audits pass', { timeout: 600_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'conclave-member-lost-'))
    const configs = await threeMembers(root, uniqueName('lost'), 'autopilot', { rounds: 2, windowSeconds: WINDOW_SECONDS, hostile: false })
    const [, , victim] = await dids(configs)
    const running: Member[] = configs.map(c => start(c))
    try {
      // Lost once its round-1 proposal is on a peer's copy: the federation is under way.
      await until('agent-3\'s round-1 proposal is on agent-1\'s copy', async () => (await copyOf(root, 1)).some(r => r.type === 'proposal' && r.round === 1 && r.issuer === victim) ? true : undefined, running, 240)
      const lost = running[2] as Member
      lost.child.kill('SIGKILL')
      await lost.exited
      await rm(join(root, 'agent-3'), { recursive: true })
      // What agent-3 published before it died reaches agent-1's copy before that copy is taken.
      await new Promise(resolve => setTimeout(resolve, 3000))
      await cp(join(root, 'agent-1', 'ledger'), join(root, 'agent-3', 'ledger'), { recursive: true })
      expect((await readdir(join(root, 'agent-3'))).sort()).toEqual(['ledger'])
      running[2] = start(configs[2] as string)
      const reports = await until('all three write their reports', async () => reportsOf(root), running)
      for (const report of reports) expect(report.audit.ok).toBe(true)
      // agent-3 reports the rounds it ran after it came back: round 1 too, unless it had cast its votes before it died
      // and the round closed while it was down (seen in one run of the suite).
      expect(reports.map(r => r.rounds.map(round => round.round))).toEqual([[1, 2], [1, 2], expect.toSatisfy((rounds: number[]) => rounds.at(-1) === 2)])
      expect(new Set(reports.map(r => r.audit.modelHash)).size).toBe(1)
      // Every round closed with agent-3's votes: with the window this long, nothing else closes one.
      const copy = await copyOf(root, 2)
      // (Proposals voted on, not votes: one cast just before the kill and again after is refused as a second, not counted.)
      const voted = (round: number): number => new Set(copy.filter(r => r.type === 'vote' && r.round === round && r.issuer === victim).map(r => r.proposal)).size
      expect([voted(1), voted(2)]).toEqual([2, 2])
      const again = JSON.parse(await readFile(join(root, 'agent-3', 'report.json'), 'utf8')) as MemberReport
      expect(again.did).toBe(victim)
    } finally {
      for (const m of running) m.child.kill('SIGTERM')
      await Promise.all(running.map(async m => m.exited))
    }
  })
})
