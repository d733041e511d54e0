import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { charterOf } from '../../../src/federation/enrol.ts'
import { Call, federationOf } from '../../../src/federation/lobby/call.ts'
import { parseFederate } from '../../../src/federation/lobby/federate-command.ts'
import { expectCharter, memberConfigOf, parseLobbyConfig, runLobby } from '../../../src/federation/lobby/lobby-member.ts'
import { lockRunDir } from '../../../src/federation/dir-lock.ts'
import { createIdentity } from '../../../src/identity/index.ts'
import { randomSecretKey } from '../../../src/identity/did-key.ts'
import { loadTask } from '../../../src/ml/task.ts'
import { createContentStore } from '../../../src/storage/index.ts'
import { tempDir } from '../helpers.ts'

const accounts = ['@lab.agent-1:lab', '@lab.agent-2:lab', '@lab.agent-3:lab'].map(userId => ({ userId, accessToken: 'not-used' }))
const settings = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  member: 2, key: 'keys/agent-2.json', dir: 'state/agent-2', federation: 'lab-lobby', seed: 5,
  task: { kind: 'classify', trainLimit: 300, testLimit: 100 },
  bus: { kind: 'matrix', baseUrl: 'http://127.0.0.1:8008', accounts }, researchers: ['@alice:lab'], ...over
})
const [d1, d2, d3] = [0, 1, 2].map(() => createIdentity(randomSecretKey()).did) as [string, string, string]

describe('a lobby agent\'s config, and the member config a call makes of it', () => {
  it('takes a member config with no members, task or rounds, on a Matrix room; refuses members, another bus, or a place beyond the accounts', () => {
    const lobby = parseLobbyConfig(settings(), '/srv')
    expect({ name: lobby.name, agents: lobby.run.agents, room: lobby.run.federation, dir: lobby.dir, key: lobby.key }).toEqual({ name: 'agent-2', agents: 3, room: 'lab-lobby', dir: '/srv/state/agent-2', key: '/srv/keys/agent-2.json' })
    expect(() => parseLobbyConfig(settings({ members: [d1, d2] }))).toThrow(expect.objectContaining({ name: 'ConfigError' }))
    expect(() => parseLobbyConfig(settings({ bus: { kind: 'local' } }))).toThrow(expect.objectContaining({ name: 'ConfigError' }))
    expect(() => parseLobbyConfig(settings({ member: 4 }))).toThrow(expect.objectContaining({ name: 'ConfigError' }))
  })

  it('my share comes from my place on the roster; the federation keeps its own directory and talks in the lobby\'s room', () => {
    const lobby = parseLobbyConfig(settings(), '/srv')
    const call = new Call('$call', parseFederate('task=classify rounds=2 seed=9 quorum=1'), accounts.map(a => a.userId))
    const federation = federationOf('lab-lobby', '$call')
    // agent-2 of the lobby, but agent-1 did not answer: it is the roster's first, so agent-1 of the federation.
    const member = memberConfigOf(lobby, { call, federation, members: [d2, d3] }, d2)
    expect({ member: member.member, name: member.name, members: member.members, dir: member.dir, room: member.room })
      .toEqual({ member: 1, name: 'agent-1', members: [d2, d3], dir: join('/srv/state/agent-2', federation), room: 'lab-lobby' })
    expect({ federation: member.run.federation, agents: member.run.agents, rounds: member.run.rounds, seed: member.run.seed, quorum: member.run.quorum, task: member.run.task })
      .toEqual({ federation, agents: 2, rounds: 2, seed: 9, quorum: { kind: 'count', count: 1 }, task: expect.objectContaining({ kind: 'classify', trainLimit: 300, testLimit: 100 }) })
    expect(memberConfigOf(lobby, { call: new Call('$c', parseFederate('task=ner rounds=1'), []), federation, members: [d1, d2] }, d2).run.task.kind).toBe('ner')
    expect(() => memberConfigOf(lobby, { call, federation, members: [d1, d3] }, d2)).toThrow(expect.objectContaining({ name: 'ConfigError' }))
    // A quorum the members present cannot reach is the call's error, before anyone federates.
    expect(() => memberConfigOf(lobby, { call: new Call('$c', parseFederate('task=classify rounds=1 quorum=2'), []), federation, members: [d1, d2] }, d2)).toThrow(expect.objectContaining({ name: 'ConfigError' }))
  })

  it('a member refuses a charter other than the call\'s: another seed, roster, quorum or federation', async () => {
    const lobby = parseLobbyConfig(settings(), '/srv')
    const call = new Call('$call', parseFederate('task=classify rounds=2'), accounts.map(a => a.userId))
    const federation = federationOf('lab-lobby', '$call')
    const members = [d1, d2, d3]
    const { run } = memberConfigOf(lobby, { call, federation, members }, d2)
    const task = await loadTask(run.task)
    const store = await createContentStore({ kind: 'helia' }, { dir: join(await tempDir('conclave-lobby-'), 'store') })
    try {
      const check = expectCharter(run, members)
      const honest = await charterOf(run, task, store, members)
      expect(() => { check(honest, task) }).not.toThrow()
      const refused = async (charter: typeof honest): Promise<string> => {
        try { check(charter, task) } catch (err) { return `${(err as Error).name}: ${(err as Error).message}` }
        return 'accepted'
      }
      expect(await refused(await charterOf({ ...run, seed: run.seed + 1 }, task, store, members))).toBe(`UnexpectedCharterError: the charter of ${federation} differs from the call in its initial model (the seed)`)
      expect(await refused({ ...honest, members: [d2, d1, d3] })).toMatch(/in its members$/)
      expect(await refused({ ...honest, quorum: { kind: 'count', count: 1 } })).toMatch(/in its quorum$/)
      expect(await refused({ ...honest, federation: 'lab-lobby.f0000000000' })).toMatch(/in its federation$/)
    } finally {
      await store.close()
      task.dispose()
    }
  })

  // Found red-teaming: two lobby processes on one config shared its sync token and both answered
  // its calls (the refused one telling the call's thread it failed, while the other ran it).
  it('refuses to open a lobby whose directory another process holds, before it joins the room', async () => {
    const root = await tempDir()
    const lobby = parseLobbyConfig(settings(), root)
    await mkdir(lobby.dir, { recursive: true })
    const release = await lockRunDir(lobby.dir)
    try {
      await expect(runLobby(lobby)).rejects.toMatchObject({ name: 'RunDirectoryError', message: expect.stringContaining('is in use') })
    } finally {
      await release()
    }
  })
})
