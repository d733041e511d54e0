import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { reportsOf, start, threeMembers, until, type Member } from './members.ts'
import { newMatrixUser, restartSynapse, synapseUrl, uniqueName } from './synapse.ts'

/**
 * No member's access token (given in its config file) is anywhere in what it wrote (its
 * directory: ledger copy, agent memory, report) or printed.
 */
async function expectNoTokenLeft (root: string, members: Member[]): Promise<void> {
  for (const [i, member] of members.entries()) {
    const { bus } = JSON.parse(await readFile(join(root, `agent-${i + 1}.json`), 'utf8')) as { bus: { accounts: Array<{ accessToken: string }> } }
    const token = bus.accounts[i]?.accessToken as string
    const dir = join(root, `agent-${i + 1}`)
    const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter(e => e.isFile()).map(e => join(e.parentPath, e.name))
    const holding = await Promise.all(files.map(async f => (await readFile(f, 'latin1')).includes(token) ? f : undefined))
    expect(holding.filter(f => f !== undefined)).toEqual([])
    expect(member.output.join('')).not.toContain(token)
  }
}


/**
 * Three members as three OS processes, as on three machines: a Matrix room on a real Synapse
 * for the bus, a real kubo daemon for content, and each its own copy of the ledger, kept in
 * step through the room. A researcher in the room asks one of them why it voted as it did.
 */
describe('a federation across processes (Synapse + kubo)', () => {
  it('three member processes federate for 2 rounds to one model; every copy of the ledger audits; an agent answers a researcher in the thread', async () => {
    const root = await mkdtemp(join(tmpdir(), 'conclave-members-'))
    const federation = uniqueName('fed')
    const researcher = await newMatrixUser('alice')
    const running = (await threeMembers(root, federation, 'agents', { researchers: [researcher.userId] })).map(c => start(c, ['--stay']))
    try {
      const reports = await until('every member writes its report', async () => reportsOf(root), running)
      for (const report of reports) {
        expect(report.rounds.map(r => r.round)).toEqual([1, 2])
        expect(report.audit.ok).toBe(true)
        // Three proposals a round, the hostile agent-3's rejected by its peers.
        expect(report.rounds.map(r => r.accepts + r.rejects)).toEqual([3, 3])
        expect(report.rounds.every(r => r.rejects >= 1)).toBe(true)
      }
      expect(new Set(reports.map(r => r.audit.modelHash)).size).toBe(1)
      expect(reports[0]?.audit.modelHash).toBe(reports[0]?.rounds.at(-1)?.modelHash)
      await expectNoTokenLeft(root, running)

      const http = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
        const r = await fetch(`${synapseUrl}${path}`, { method, headers: { authorization: `Bearer ${researcher.accessToken}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
        if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`)
        return r.json() as Promise<T>
      }
      const { room_id: roomId } = await http<{ room_id: string }>('POST', `/_matrix/client/v3/join/${encodeURIComponent(`#${federation}:localhost`)}`, {})
      const { event_id: question } = await http<{ event_id: string }>('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/q-${Date.now()}`,
        { msgtype: 'm.text', body: "@agent-2 why did you reject agent-3's update in round 1?" })
      const answers = await until('agent-2 answers in the thread', async () => {
        const { chunk } = await http<{ chunk: Array<{ sender: string, content: { body: string } }> }>('GET', `/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/relations/${encodeURIComponent(question)}/m.thread`)
        return chunk.length > 0 ? chunk : undefined
      }, running, 60)
      expect(answers).toHaveLength(1)
      expect(answers[0]?.content.body).toContain("I voted to reject agent-3's round 1 update")
    } finally {
      for (const m of running) m.child.kill('SIGTERM')
    }
    expect(await Promise.all(running.map(m => m.exited))).toEqual([0, 0, 0])
  }, 900_000)
})

describe('a homeserver restart during a federation across processes', () => {
  it('loses and duplicates nothing: every member ends with the same 27 blocks, the same model, and an audit that passes', async () => {
    const root = await mkdtemp(join(tmpdir(), 'conclave-members-restart-'))
    const running = (await threeMembers(root, uniqueName('fed'), 'autopilot')).map(c => start(c))
    try {
      await until('every member has the charter', async () => running.every(m => m.output.join('').includes('chartered')) ? true : undefined, running, 180)
      // The restart falls inside the federation: nobody has finished its last round.
      expect(running.filter(m => m.output.join('').includes('round 2:'))).toEqual([])
      restartSynapse()
      expect(await Promise.all(running.map(m => m.exited))).toEqual([0, 0, 0])
      const reports = await reportsOf(root)
      for (const report of reports) expect(report.audit).toMatchObject({ ok: true, records: 27 }) // charter + 2 × (3 proposals, 6 votes, 3 decisions, 1 checkpoint)
      expect(new Set(reports.map(r => r.audit.modelHash)).size).toBe(1)
      const copies = await Promise.all([1, 2, 3].map(async i => (await readFile(join(root, `agent-${i}`, 'ledger', 'replica.jsonl'), 'utf8')).trim().split('\n').slice(1).map(l => (JSON.parse(l) as { id: string }).id)))
      for (const copy of copies) {
        expect(new Set(copy).size).toBe(27)
        expect(copy).toEqual(copies[0])
      }
    } finally {
      for (const m of running) if (m.child.exitCode === null) m.child.kill('SIGTERM')
    }
  }, 900_000)
})
