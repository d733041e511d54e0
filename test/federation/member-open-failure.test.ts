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
  return { ...real, createMemberBuses: async (...args: Parameters<typeof real.createMemberBuses>) => tracked('buses', await real.createMemberBuses(...args)) }
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
