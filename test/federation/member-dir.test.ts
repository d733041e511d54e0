import { mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { lockRunDir } from '../../src/federation/dir-lock.ts'
import { parseMemberConfig, runMember, type MemberConfig } from '../../src/federation/member.ts'
import { createIdentity, loadOrCreateKeystore } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { tempDir } from './helpers.ts'

/** Member 1 of two in `root/state`, on a bus of its own: it waits a second for the other, which never says hello. */
async function founderIn (root: string): Promise<MemberConfig> {
  const me = await loadOrCreateKeystore(join(root, 'keys', 'agent-1.json'))
  return parseMemberConfig({
    member: 1, members: [me.did, createIdentity(randomSecretKey()).did], key: 'keys/agent-1.json', dir: 'state', joinSeconds: 1,
    federation: 'member-dir', seed: 3, rounds: 1, task: { kind: 'classify', trainLimit: 100, testLimit: 50, features: 256 }
  }, root)
}

describe('a member\'s directory', () => {
  // Two `conclave agent` processes on one directory (a second start by mistake, a restart while
  // the first still ran) both opened its ledger copy, store and sync token to write: their lines
  // interleave and the copy is damaged for good. (The lock itself, between processes: dir-lock.test.ts.)
  it('is one process\'s at a time: refuses a directory someone holds, writing nothing there, and runs once it is free', async () => {
    const config = await founderIn(await tempDir())
    await mkdir(config.dir)
    const release = await lockRunDir(config.dir)
    const before = await readdir(config.dir)
    await expect(runMember(config)).rejects.toMatchObject({ name: 'RunDirectoryError', message: expect.stringContaining('is in use') })
    expect(await readdir(config.dir)).toEqual(before)
    await release()
    // Free: it runs (and stops here as nobody else came).
    await expect(runMember(config)).rejects.toMatchObject({ name: 'BackendUnavailableError', message: expect.stringContaining('said hello') })
  }, 60_000)

  // A member whose directory was lost after the charter made a new, empty copy, which refuses the
  // charter as an earlier run's: it waited out joinSeconds and said only that no charter came.
  it('tells a member that got no charter how to start again if its directory was lost', async () => {
    const root = await tempDir()
    const me = await loadOrCreateKeystore(join(root, 'keys', 'agent-2.json'))
    const config = parseMemberConfig({
      member: 2, members: [createIdentity(randomSecretKey()).did, me.did], key: 'keys/agent-2.json', dir: 'state', joinSeconds: 1,
      federation: 'member-dir', seed: 3, rounds: 1, task: { kind: 'classify', trainLimit: 100, testLimit: 50, features: 256 }
    }, root)
    await expect(runMember(config)).rejects.toMatchObject({ name: 'BackendUnavailableError', message: expect.stringContaining('copy a peer\'s ledger/ folder into it') })
  }, 60_000)
})
