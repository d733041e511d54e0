import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect, it, vi } from 'vitest'
import { parseMemberConfig } from '../../src/federation/member.ts'
import { createIdentity, loadOrCreateKeystore } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { tempDir } from './helpers.ts'

// runMember opened its store, buses and ledger copy before its try: when one of them failed to
// open (its folder a file), those opened before it stayed open. On Matrix the bus's sync loop
// then kept `conclave agent` running after it had printed its error. What was opened is recorded.
const opened = vi.hoisted(() => ({ store: 'never' as 'never' | 'open' | 'closed', buses: 'never' as 'never' | 'open' | 'closed' }))
vi.mock('../../src/storage/index.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/storage/index.ts')>()
  return {
    ...real,
    createContentStore: async (...args: Parameters<typeof real.createContentStore>) => {
      const store = await real.createContentStore(...args)
      opened.store = 'open'
      const close = store.close.bind(store)
      store.close = async () => { opened.store = 'closed'; await close() }
      return store
    }
  }
})
vi.mock('../../src/transport/members.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/transport/members.ts')>()
  return {
    ...real,
    createMemberBuses: async (...args: Parameters<typeof real.createMemberBuses>) => {
      const buses = await real.createMemberBuses(...args)
      opened.buses = 'open'
      return { ...buses, close: async () => { opened.buses = 'closed'; await buses.close() } }
    }
  }
})

it('a member whose ledger copy cannot be opened closes the store and buses it had opened', async () => {
  const { runMember } = await import('../../src/federation/member.ts')
  const root = await tempDir()
  const me = await loadOrCreateKeystore(join(root, 'keys', 'agent-1.json'))
  const config = parseMemberConfig({
    member: 1, members: [me.did, createIdentity(randomSecretKey()).did], key: 'keys/agent-1.json', dir: 'state', joinSeconds: 1,
    federation: 'member-open', seed: 3, rounds: 1, task: { kind: 'classify', trainLimit: 100, testLimit: 50, features: 256 }
  }, root)
  // A file where its ledger copy's folder belongs: the ledger is the third thing it opens.
  await mkdir(config.dir)
  await writeFile(join(config.dir, 'ledger'), 'not a folder\n')
  await expect(runMember(config)).rejects.toMatchObject({ code: 'EEXIST' })
  expect(opened).toEqual({ store: 'closed', buses: 'closed' })
}, 60_000)
