import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect, it, vi } from 'vitest'
import { Call, federationOf } from '../../../src/federation/lobby/call.ts'
import { parseFederate } from '../../../src/federation/lobby/federate-command.ts'
import { createIdentity, loadOrCreateKeystore } from '../../../src/identity/index.ts'
import { randomSecretKey } from '../../../src/identity/did-key.ts'
import type { BusMessage } from '../../../src/transport/index.ts'
import { tempDir } from '../helpers.ts'

// The lobby's room stands in as one where a call has just started `start` with me on its roster;
// its buses as in-process ones, whose messages are noted.
const { room, said } = vi.hoisted(() => ({ room: { start: undefined as unknown }, said: [] as string[] }))
vi.mock('../../../src/federation/lobby/lobby.ts', () => ({
  Lobby: class {
    async listen (): Promise<{ unsubscribe: () => void }> { return { unsubscribe: () => {} } }
    async next (options: { signal?: AbortSignal }): Promise<unknown> {
      const start = room.start
      room.start = undefined
      if (start !== undefined) return start
      return new Promise((_resolve, reject) => { options.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }, { once: true }) })
    }

    finished (): void {}
  }
}))
vi.mock('../../../src/transport/members.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../src/transport/members.ts')>()
  return {
    ...real,
    createMemberBuses: async (_config: unknown, init: Parameters<typeof real.createMemberBuses>[1]) => {
      const buses = await real.createMemberBuses({ kind: 'local' }, init)
      const bus = buses.of(0)
      const publish = bus.publish.bind(bus)
      bus.publish = async (roomId: string, message: BusMessage) => { if (message.kind === 'chat') said.push(message.body); await publish(roomId, message) }
      return buses
    }
  }
})

// Found red-teaming: a lobby member kept each federation's state in dir/<federation>, made or taken
// as it was: a link planted under a federation's name had it write its lock, marker, ledger copy
// and store into the folder the link names.
it('a lobby member refuses a federation whose folder is a link or a file, writing nothing through it', async () => {
  const { parseLobbyConfig, runLobby } = await import('../../../src/federation/lobby/lobby-member.ts')
  const root = await tempDir()
  const lobby = parseLobbyConfig({
    member: 1, key: 'keys/agent-1.json', dir: 'state', federation: 'lab-lobby', seed: 3, joinSeconds: 1,
    task: { kind: 'classify', trainLimit: 100, testLimit: 50, features: 256 },
    bus: { kind: 'matrix', baseUrl: 'http://127.0.0.1:9', accounts: ['@lab.agent-1:lab', '@lab.agent-2:lab'].map(userId => ({ userId, accessToken: 'not-used' })) }
  }, root)
  const me = (await loadOrCreateKeystore(lobby.key)).did
  const victim = join(root, 'thesis')
  await mkdir(victim)
  await writeFile(join(victim, 'notes.txt'), 'mine')
  const plants = [
    { name: 'link', make: async (path: string) => symlink(victim, path) },
    { name: 'file', make: async (path: string) => writeFile(path, 'mine') }
  ]
  for (const [i, { name, make }] of plants.entries()) {
    const call = new Call(`$call${i}`, parseFederate('task=classify rounds=1'), ['@lab.agent-1:lab', '@lab.agent-2:lab'])
    const federation = federationOf('lab-lobby', call.id)
    await mkdir(lobby.dir, { recursive: true })
    await make(join(lobby.dir, federation))
    room.start = { call, federation, members: [me, createIdentity(randomSecretKey()).did] }
    said.length = 0
    const stop = new AbortController()
    await runLobby(lobby, { signal: stop.signal, say: line => { if (line.includes(`${federation} failed`)) stop.abort() } })
    expect(await readdir(victim), name).toEqual(['notes.txt'])
    expect(said, name).toEqual([expect.stringContaining(`${federation} failed for me: RunDirectoryError:`)])
  }
  // Its own folder, made before (a restart), it takes: the member runs (and stops as nobody else came).
  const call = new Call('$again', parseFederate('task=classify rounds=1'), ['@lab.agent-1:lab', '@lab.agent-2:lab'])
  const federation = federationOf('lab-lobby', call.id)
  await mkdir(join(lobby.dir, federation))
  room.start = { call, federation, members: [me, createIdentity(randomSecretKey()).did] }
  said.length = 0
  const stop = new AbortController()
  await runLobby(lobby, { signal: stop.signal, say: line => { if (line.includes(`${federation} failed`)) stop.abort() } })
  expect(said).toEqual([expect.stringContaining(`${federation} failed for me: BackendUnavailableError:`)])
}, 60_000)
