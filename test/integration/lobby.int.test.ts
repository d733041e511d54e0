import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { access, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { federationOf } from '../../src/federation/lobby/call.ts'
import type { MemberReport } from '../../src/federation/member.ts'
import { loadOrCreateKeystore, peekRecord } from '../../src/identity/index.ts'
import { CONTENT_KEY } from '../../src/transport/matrix.ts'
import { client, newMatrixUser, synapseUrl, uniqueName, until, type RoomEvent } from './synapse.ts'

const kuboUrl = `http://127.0.0.1:${process.env.KUBO_API_PORT ?? '5001'}`

interface Agent { child: ChildProcess, output: string[], exited: Promise<number | null> }

/** `conclave agent --lobby --config FILE` as its own OS process, its output kept for failures. */
function start (config: string): Agent {
  const child = spawn('node_modules/.bin/node', ['bin/conclave.js', 'agent', '--lobby', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] })
  const output: string[] = []
  child.stdout?.on('data', (d: Buffer) => output.push(d.toString()))
  child.stderr?.on('data', (d: Buffer) => output.push(d.toString()))
  return { child, output, exited: new Promise(resolve => child.on('exit', code => { resolve(code) })) }
}

/** Waits for `check`, failing at once (with every agent's output) when one has exited. */
async function waitFor (what: string, check: () => Promise<boolean>, agents: Agent[], ms: number): Promise<void> {
  await until(async () => {
    if (agents.some(a => a.child.exitCode !== null)) throw new Error(`${what}: an agent exited.\n${agents.map((a, i) => `--- agent-${i + 1} (exit ${a.child.exitCode}):\n${a.output.join('').slice(-3000)}`).join('\n')}`)
    return check().catch(() => false)
  }, ms).catch((err: Error) => { throw new Error(`${what}: ${err.message}\n${agents.map((a, i) => `--- agent-${i + 1}:\n${a.output.join('').slice(-3000)}`).join('\n')}`) })
}

/**
 * The researcher's window: three agents as three processes, each its own Matrix account,
 * wait in a lobby room on a real Synapse (content on a real kubo). Strangers' !federate
 * and !pause are refused and start nothing; the researcher's !federate starts a
 * federation of the three, which runs its rounds in the room and ends with each agent's
 * result in the call's thread.
 */
describe('a federation started from the room (Synapse + kubo)', () => {
  it('strangers are refused and change nothing; a researcher\'s !federate task=classify rounds=2 runs the three agents present to one audited model', async () => {
    const root = await mkdtemp(join(tmpdir(), 'conclave-lobby-'))
    const lobby = uniqueName('lobby')
    const [researcher, malloryAccount, eveAccount] = [await newMatrixUser('alice'), await newMatrixUser('mallory'), await newMatrixUser('eve')]
    const accounts = await Promise.all([1, 2, 3].map(async i => newMatrixUser(`agent${i}`)))
    const dids: string[] = []
    const configs: string[] = []
    for (const i of [0, 1, 2]) {
      const key = join(root, `agent-${i + 1}.key.json`)
      dids.push((await loadOrCreateKeystore(key)).did)
      configs.push(join(root, `agent-${i + 1}.json`))
      await writeFile(configs[i] as string, JSON.stringify({
        member: i + 1, key, dir: join(root, `agent-${i + 1}`), joinSeconds: 120,
        federation: lobby, seed: 5, windowSeconds: 300,
        task: { kind: 'classify', trainLimit: 600, testLimit: 200 },
        store: { kind: 'kubo', url: kuboUrl },
        ledger: { kind: 'replica', difficulty: 4 },
        bus: { kind: 'matrix', baseUrl: synapseUrl, accounts: accounts.map((a, j) => j === i ? a : { userId: a.userId }) },
        researchers: [researcher.userId],
        agent: { driver: 'agents', llm: 'policy' }
      }, null, 2))
    }
    const agents = configs.map(start)
    try {
      const [alice, mallory, eve] = [client(researcher), client(malloryAccount), client(eveAccount)]
      const alias = encodeURIComponent(`#${lobby}:localhost`)
      await waitFor('every agent waits in the lobby', async () => agents.every(a => a.output.join('').includes('waiting for a researcher')), agents, 120_000)
      let roomId = ''
      await waitFor('the researcher joins the lobby', async () => { roomId = (await alice.json<{ room_id: string }>('POST', `/_matrix/client/v3/join/${alias}`, {})).room_id; return true }, agents, 60_000)
      for (const stranger of [malloryAccount, eveAccount]) await alice.json('POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`, { user_id: stranger.userId })
      await mallory.json('POST', `/_matrix/client/v3/join/${alias}`, {})
      await eve.json('POST', `/_matrix/client/v3/join/${alias}`, {})
      const thread = async (event: string): Promise<RoomEvent[]> => alice.relations(roomId, event, 'm.thread')
      const carried = (e: RoomEvent): { kind?: string } | undefined => e.content[CONTENT_KEY] as { kind?: string } | undefined

      // Strangers: one refusal each, from the lobby's first agent; nobody answers the call.
      const refusedFederate = await mallory.send(roomId, { msgtype: 'm.text', body: '!federate task=classify rounds=2' })
      const refusedPause = await eve.send(roomId, { msgtype: 'm.text', body: '!pause' })
      await waitFor('the strangers are refused', async () => (await thread(refusedFederate)).length >= 1 && (await thread(refusedPause)).length >= 1, agents, 60_000)
      expect((await thread(refusedFederate)).map(e => [e.sender, e.content.body])).toEqual([[accounts[0]?.userId, "agent-1: sorry, I take !federate only from this federation's researchers. You can still ask me !status."]])
      expect((await thread(refusedPause)).map(e => [e.sender, e.content.body])).toEqual([[accounts[0]?.userId, "agent-1: sorry, I take !pause only from this federation's researchers. You can still ask me !status."]])

      // A researcher's bad command is answered with what is wrong.
      const bad = await alice.send(roomId, { msgtype: 'm.text', body: '!federate task=classify rounds=two' })
      await waitFor('the bad command is answered', async () => (await thread(bad)).length >= 1, agents, 60_000)
      expect((await thread(bad)).map(e => e.content.body)).toEqual([expect.stringMatching(/^agent-1: I cannot start that federation: rounds: expected a whole number\. Usage: !federate/)])

      const call = await alice.send(roomId, { msgtype: 'm.text', body: '!federate task=classify rounds=2' })
      const federation = federationOf(lobby, call)
      const reportOf = async (i: number): Promise<MemberReport> => JSON.parse(await readFile(join(root, `agent-${i + 1}`, federation, 'report.json'), 'utf8')) as MemberReport
      await waitFor('every agent finishes the federation', async () => (await Promise.all([0, 1, 2].map(async i => reportOf(i).then(() => true)))).every(Boolean), agents, 600_000)
      const reports = await Promise.all([0, 1, 2].map(reportOf))
      for (const [i, report] of reports.entries()) {
        expect({ name: report.name, did: report.did, rounds: report.rounds.map(r => r.round), ok: report.audit.ok }).toEqual({ name: `agent-${i + 1}`, did: dids[i], rounds: [1, 2], ok: true })
        expect(report.rounds.map(r => r.accepts + r.rejects)).toEqual([3, 3])
      }
      const model = reports[0]?.audit.modelHash
      expect(reports.map(r => r.audit.modelHash)).toEqual([model, model, model])
      expect(model).toBe(reports[0]?.rounds.at(-1)?.modelHash)
      const { stdout } = await promisify(execFile)('node_modules/.bin/node', ['bin/conclave.js', 'audit', join(root, 'agent-2', federation), '--kubo', kuboUrl, '--json'])
      expect(JSON.parse(stdout)).toMatchObject({ ok: true, modelHash: model })

      // The call's thread: three signed answers, one roster in lobby order, and each agent's result.
      await waitFor('every agent reports in the thread', async () => (await thread(call)).filter(e => String(e.content.body).includes(`finished ${federation}`)).length === 3, agents, 60_000)
      const answers = await thread(call)
      expect(answers.filter(e => carried(e)?.kind === 'enrol').map(e => e.sender).sort()).toEqual(accounts.map(a => a.userId).sort())
      expect(answers.filter(e => carried(e)?.kind === 'roster').map(e => (carried(e) as { members: string[] }).members)).toEqual([dids])
      const results = answers.filter(e => String(e.content.body).includes(`finished ${federation}`))
      expect(results.map(e => e.sender).sort()).toEqual(accounts.map(a => a.userId).sort())
      for (const e of results) expect(String(e.content.body)).toContain(`model ${model}; audit of my ledger copy ok`)
      // The founder's adds the round table.
      expect(results.map(e => String(e.content.body).split('\n').length).sort()).toEqual([1, 1, 3])
      expect(results.find(e => e.sender === accounts[0]?.userId)?.content.body).toMatch(/\nround 1: \d accepted, \d rejected, accuracy \d\.\d{4}, model [0-9a-f]{12}\nround 2: \d accepted, \d rejected, accuracy \d\.\d{4}, model [0-9a-f]{12}$/)

      // What the researcher's client sees: the federation's notices from three distinct senders, one charter
      // naming the three, and each vote as a reaction by its voter.
      const events = await alice.messages(roomId)
      const records = events.flatMap(e => {
        const m = carried(e) as { kind?: string, jwt?: string } | undefined
        return m?.kind === 'record' ? [{ sender: e.sender, record: peekRecord(m.jwt as string).record }] : []
      })
      expect(new Set(records.map(r => r.sender))).toEqual(new Set(accounts.map(a => a.userId)))
      expect(records.filter(r => r.record?.type === 'charter').map(r => r.record?.type === 'charter' ? { federation: r.record.federation, members: r.record.members } : undefined)).toEqual([{ federation, members: dids }])
      const votes = records.filter(r => r.record?.type === 'vote')
      const reactions = events.filter(e => e.type === 'm.reaction' && accounts.some(a => a.userId === e.sender))
      expect(votes).toHaveLength(12) // 2 rounds × 3 proposals × 2 peers
      expect(reactions).toHaveLength(votes.length)

      // The strangers changed nothing: the researcher's call started the one federation there is.
      for (const i of [0, 1, 2]) expect((await readdir(join(root, `agent-${i + 1}`), { withFileTypes: true })).filter(e => e.isDirectory()).map(e => e.name)).toEqual([federation])
      await expect(access(join(root, 'agent-1', federationOf(lobby, refusedFederate)))).rejects.toThrow()
      expect(events.filter(e => carried(e)?.kind === 'enrol')).toHaveLength(3)

      // Back in the lobby: the next call is a new federation, in its own directory.
      const next = await alice.send(roomId, { msgtype: 'm.text', body: '!federate task=classify rounds=1 seed=6' })
      const second = federationOf(lobby, next)
      await waitFor('every agent finishes the second federation', async () => (await thread(next)).filter(e => String(e.content.body).includes(`finished ${second}`)).length === 3, agents, 600_000)
      const again = await Promise.all([0, 1, 2].map(async i => JSON.parse(await readFile(join(root, `agent-${i + 1}`, second, 'report.json'), 'utf8')) as MemberReport))
      expect(again.map(r => ({ rounds: r.rounds.map(x => x.round), ok: r.audit.ok, records: r.audit.records }))).toEqual([0, 1, 2].map(() => ({ rounds: [1], ok: true, records: 14 }))) // charter + 3 proposals, 6 votes, 3 decisions, 1 checkpoint
      expect(new Set(again.map(r => r.audit.modelHash)).size).toBe(1)
    } finally {
      for (const a of agents) a.child.kill('SIGTERM')
    }
    expect(await Promise.all(agents.map(a => a.exited))).toEqual([0, 0, 0])
  }, 900_000)
})
