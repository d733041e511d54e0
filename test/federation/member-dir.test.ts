import { spawn } from 'node:child_process'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseMemberConfig, runMember, type MemberConfig } from '../../src/federation/member.ts'
import { RUN_LOCK } from '../../src/federation/run-dir.ts'
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

/** A process that runs until killed, and one that has ended: their ids. */
async function processes (): Promise<{ live: number, gone: number, stop: () => void }> {
  const live = spawn('sleep', ['60'])
  const ended = spawn('true')
  await new Promise(resolve => ended.on('exit', resolve))
  return { live: live.pid as number, gone: ended.pid as number, stop: () => live.kill() }
}

describe('a member\'s directory: one process at a time', () => {
  // Two `conclave agent` processes on one directory (a second start by mistake, a restart while
  // the first still ran) both opened its ledger copy, store and sync token to write: their lines
  // interleave and the copy is damaged for good.
  it('refuses a directory another live member process holds, writing nothing there, and takes over a killed one\'s', async () => {
    const root = await tempDir()
    const config = await founderIn(root)
    const { live, gone, stop } = await processes()
    try {
      await mkdir(config.dir)
      await writeFile(join(config.dir, RUN_LOCK), `${live}\n`)
      await expect(runMember(config)).rejects.toMatchObject({ name: 'RunDirectoryError', message: expect.stringContaining(`process ${live} is running in it`) })
      expect(await readdir(config.dir)).toEqual([RUN_LOCK])
      // A killed member's lock: taken over, and given back as the process ends (here: nobody else came).
      await writeFile(join(config.dir, RUN_LOCK), `${gone}\n`)
      await expect(runMember(config)).rejects.toMatchObject({ name: 'BackendUnavailableError', message: expect.stringContaining('said hello') })
      expect(await readdir(config.dir)).not.toContain(RUN_LOCK)
    } finally {
      stop()
    }
  }, 60_000)
})
