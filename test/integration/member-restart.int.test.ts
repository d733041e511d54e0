import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { copyOf, dids, reportsOf, start, threeMembers, until } from './members.ts'
import { client, newMatrixUser, uniqueName } from './synapse.ts'

/** Far longer than the test may take: a round that closes did so because every vote was in, not because its window ran out. */
const WINDOW_SECONDS = 1800

/**
 * `conclave agent` (policy agents) killed with SIGKILL while its peers' proposals were in its
 * copy of the ledger and it had not voted on them (a researcher had paused it: it held the
 * events), and after its room's sync token had moved past them, then started again on its
 * own directory, still paused until the researcher's !resume: the round completes with the
 * votes it owed, long before the window would close it. Which part of the restart casts them: with `driver.resume` taken out of runMember
 * this test still passes, because the agent's `conclave:record:applied` listener hears the
 * proposals again as catchUp replays its copy (it does not check `replaying`). The autopilot
 * does not react to replayed proposals and relies on resume; its kill window (between a
 * proposal reaching its copy and its vote) is too short to hit from outside, so it is
 * tested in process instead (test/federation/restart.test.ts: down while its peers propose,
 * restarted, it votes through resume, and casts nothing with resume taken out).
 */
describe('a member process killed before it voted, restarted on its own directory (Synapse + kubo)', () => {
  it('casts the votes it owed: the round completes with its votes on every copy of the ledger, and every audit passes', async () => {
    const root = await mkdtemp(join(tmpdir(), 'conclave-member-restart-'))
    const federation = uniqueName('fed')
    const researcher = await newMatrixUser('alice')
    const configs = await threeMembers(root, federation, 'agents', { rounds: 1, windowSeconds: WINDOW_SECONDS, hostile: false, researchers: [researcher.userId] })
    const [, , victim] = await dids(configs)
    // agent-3 starts alone, and the researcher pauses it before its peers start: no charter, no round before the pause.
    // (Started together, on a slow machine the pause came after its round had opened, and it proposed: its peers then
    // voted on its proposal too.)
    const running = [start(configs[2] as string)]
    try {
      const alice = client(researcher)
      const roomId = await until('the room exists', async () => (await alice.json<{ room_id: string }>('POST', `/_matrix/client/v3/join/${encodeURIComponent(`#${federation}:localhost`)}`, {})).room_id, running, 120)
      // Only once agent-3 is in the room: a message sent before it joined is history to it, not news.
      const agent3 = (JSON.parse(await readFile(configs[2] as string, 'utf8')) as { bus: { accounts: Array<{ userId: string }> } }).bus.accounts[2]?.userId as string
      await until('agent-3 joins the room', async () => agent3 in (await alice.json<{ joined: Record<string, unknown> }>('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`)).joined ? true : undefined, running, 120)
      const pause = await alice.send(roomId, { msgtype: 'm.text', body: '@agent-3 !pause' })
      const replies = await until('agent-3 answers', async () => {
        const mine = (await alice.relations(roomId, pause, 'm.thread')).map(e => String(e.content.body)).filter(body => body.startsWith('agent-3'))
        return mine.length > 0 ? mine : undefined
      }, running, 120)
      expect(replies).toEqual(['agent-3 paused: I will not propose or vote until !resume.'])
      running.unshift(start(configs[0] as string), start(configs[1] as string))
      // Its peers propose; each proposal needs its vote to reach the quorum (2 of 3). Both reach its copy.
      const open = await until('agent-3 holds agent-1 and agent-2 proposals', async () => {
        const proposals = (await copyOf(root, 3)).filter(r => r.type === 'proposal' && r.round === 1 && r.issuer !== victim)
        return proposals.length === 2 ? proposals.map(p => p.id).sort() : undefined
      }, running, 240)
      // Killed only once its room's sync token (saved after each batch it handled) has moved past them and past its peers'
      // votes on each other's proposals: the restarted process is not handed them again as news.
      await until('agent-3 holds its peers\' votes on each other', async () => (await copyOf(root, 3)).filter(r => r.type === 'vote' && r.issuer !== victim && open.includes(r.proposal as string)).length === 2 ? true : undefined, running, 300)
      const token = join(root, 'agent-3', 'sync-token')
      const seen = await readFile(token, 'utf8')
      await until('agent-3 handles one more batch from the room', async () => await readFile(token, 'utf8') !== seen ? true : undefined, running, 120)
      const killed = running[2] as (typeof running)[number]
      killed.child.kill('SIGKILL')
      expect(await killed.exited).toBe(null) // ended by the signal, with no exit code of its own
      // What it held when it died: its peers' proposals, and no proposal or vote of its own (it was paused).
      expect((await copyOf(root, 3)).filter(r => (r.type === 'vote' || r.type === 'proposal') && r.issuer === victim)).toEqual([])

      running[2] = start(configs[2] as string)
      // Restarted, it is still paused (the pause outlives the process) until the researcher resumes it. The !resume
      // goes at once: it reaches the new process before its agent listens (its ledger copy listens first, for blocks),
      // and is held for the agent, which once went unanswered (handed to the ledger copy alone).
      const asked = await alice.send(roomId, { msgtype: 'm.text', body: '@agent-3 !resume' })
      const resumed = await until('agent-3 resumes', async () => {
        const mine = (await alice.relations(roomId, asked, 'm.thread')).map(e => String(e.content.body)).filter(body => body.startsWith('agent-3'))
        return mine.length > 0 ? mine : undefined
      }, running, 180)
      expect(resumed[0]).toMatch(/^agent-3 resumed, catching up on \d+ events\.$/)
      const reports = await until('every member writes its report', async () => reportsOf(root), running, 240)
      for (const report of reports) {
        expect(report.rounds.map(r => ({ round: r.round, decided: r.accepts + r.rejects }))).toEqual([{ round: 1, decided: 3 }])
        expect(report.audit.ok).toBe(true)
      }
      expect(new Set(reports.map(r => r.audit.modelHash)).size).toBe(1)
      for (const n of [1, 2, 3]) {
        const votes = (await copyOf(root, n)).filter(r => r.type === 'vote' && r.issuer === victim && open.includes(r.proposal as string))
        expect(votes.map(v => v.proposal).sort()).toEqual(open)
      }
      expect(running[2]?.output.join('')).not.toContain('window closed before every vote was in')
    } finally {
      for (const m of running) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGTERM')
    }
    expect(await Promise.all(running.map(m => m.exited))).toEqual([0, 0, 0])
  }, 600_000)
})
