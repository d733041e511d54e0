import { mkdir, readdir } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { lockRunDir } from '../../src/federation/dir-lock.ts'
import { runMember, type MemberConfig } from '../../src/federation/member.ts'
import { memberOfTwo, tempDir } from './helpers.ts'

/** Member 1 of two in `root/state`, on a bus of its own: it waits a second for the other, which never says hello. */
async function founderIn (root: string): Promise<MemberConfig> {
  return memberOfTwo(root, 1, { federation: 'member-dir' })
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
    const config = await memberOfTwo(await tempDir(), 2, { federation: 'member-dir' })
    await expect(runMember(config)).rejects.toMatchObject({ name: 'BackendUnavailableError', message: expect.stringContaining('copy a peer\'s ledger/ folder into it') })
  }, 60_000)
})
