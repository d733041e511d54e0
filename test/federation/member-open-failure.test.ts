import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeEach, expect, it, vi } from 'vitest'
import { memberOfTwo, tempDir } from './helpers.ts'

// runMember opened its store, buses and ledger copy before its try, and runLobby listened to its
// room after opening its buses, outside its try: when one of them failed to open (its folder a
// file, the room refused), those opened before it stayed open. On Matrix the bus's sync loop then
// kept `conclave agent` running after it had printed its error. What was opened is recorded.
const { opened, tracked } = vi.hoisted(() => {
  const opened = { store: 'never' as 'never' | 'open' | 'closed', buses: 'never' as 'never' | 'open' | 'closed' }
  /** Notes `part` as open, and as closed once its close is called. */
  const tracked = <T extends { close: () => Promise<void> }>(part: keyof typeof opened, made: T): T => {
    opened[part] = 'open'
    const close = made.close.bind(made)
    made.close = async () => { opened[part] = 'closed'; await close() }
    return made
  }
  return { opened, tracked }
})
vi.mock('../../src/storage/index.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/storage/index.ts')>()
  return { ...real, createContentStore: async (...args: Parameters<typeof real.createContentStore>) => tracked('store', await real.createContentStore(...args)) }
})
vi.mock('../../src/transport/members.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/transport/members.ts')>()
  // A lobby's Matrix buses stand in as ones that open, and whose room refuses to be listened to.
  const refusing = async (): Promise<never> => { throw new Error('the homeserver refused the room') }
  const lobbyBuses = (): Awaited<ReturnType<typeof real.createMemberBuses>> => ({
    of: () => ({ sender: '@lab.agent-1:lab', publish: async () => {}, subscribe: refusing, settled: async () => {}, close: async () => {} }),
    accounts: ['@lab.agent-1:lab'],
    settled: async () => {},
    close: async () => {}
  })
  return { ...real, createMemberBuses: async (...args: Parameters<typeof real.createMemberBuses>) => tracked('buses', args[0].kind === 'matrix' ? lobbyBuses() : await real.createMemberBuses(...args)) }
})

beforeEach(() => { Object.assign(opened, { store: 'never', buses: 'never' }) })

it('a member whose ledger copy cannot be opened closes the store and buses it had opened', async () => {
  const { runMember } = await import('../../src/federation/member.ts')
  const config = await memberOfTwo(await tempDir(), 1, { federation: 'member-open' })
  // A folder where its ledger copy's file belongs: the ledger is the third thing it opens. (A
  // file where its folder belongs is refused before anything opens: member-dir.test.ts.)
  await mkdir(join(config.dir, 'ledger', 'tangle.jsonl'), { recursive: true })
  await expect(runMember(config)).rejects.toMatchObject({ name: 'LedgerCorruptError', code: 'ERR_LEDGER_CORRUPT' })
  expect(opened).toEqual({ store: 'closed', buses: 'closed' })
}, 60_000)

it('a lobby agent whose room cannot be listened to closes the buses it had opened', async () => {
  const { parseLobbyConfig, runLobby } = await import('../../src/federation/lobby/lobby-member.ts')
  const root = await tempDir()
  const config = parseLobbyConfig({
    member: 1, key: 'keys/agent-1.json', dir: 'state', federation: 'lobby-open', seed: 3,
    task: { kind: 'classify', trainLimit: 100, testLimit: 50 },
    bus: { kind: 'matrix', baseUrl: 'http://127.0.0.1:9', accounts: ['@lab.agent-1:lab', '@lab.agent-2:lab'].map(userId => ({ userId, accessToken: 'not-used' })) }
  }, root)
  await expect(runLobby(config)).rejects.toThrow('the homeserver refused the room')
  expect(opened.buses).toBe('closed')
}, 60_000)
