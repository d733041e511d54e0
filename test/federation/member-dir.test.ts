import { execFileSync } from 'node:child_process'
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
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

  // Found red-teaming: a member wrote its report.json with a plain write, through a link planted
  // there (the link's target, someone's file, became the report), and took any existing folder
  // as its dir, replacing the owner's own report.json, manifest.json or head.json at the end.
  it('is refused, before anything is written there, where a file it replaces is a link, a FIFO, or one it did not make', async () => {
    const root = await tempDir()
    const victim = join(root, 'thesis.tex')
    await writeFile(victim, 'mine')
    const refused = { name: 'RunDirectoryError', code: 'ERR_RUN_DIRECTORY' }
    const plant = [
      { path: 'report.json', make: async (p: string) => symlink(victim, p) },
      { path: 'report.json.tmp', make: async (p: string) => symlink(victim, p) },
      { path: 'head.json', make: async (p: string) => { execFileSync('mkfifo', [p]) } },
      { path: 'manifest.json', make: async (p: string) => writeFile(p, 'my own manifest') },
      { path: 'report.json', make: async (p: string) => writeFile(p, 'my own report') }
    ]
    const config = await founderIn(root)
    for (const { path, make } of plant) {
      await rm(config.dir, { recursive: true, force: true })
      await mkdir(config.dir)
      await writeFile(join(config.dir, 'notes.txt'), 'mine') // the user's folder, taken as the member's dir
      await make(join(config.dir, path))
      const before = (await readdir(config.dir)).sort()
      await expect(runMember(config), path).rejects.toMatchObject({ ...refused, message: expect.stringContaining(`"${path}"`) })
      expect((await readdir(config.dir)).sort()).toEqual(before)
    }
    expect(await readFile(victim, 'utf8')).toBe('mine')
    // A folder the member marked holds its own files: taken (it stops as nobody else came), but never through a link.
    await rm(config.dir, { recursive: true, force: true })
    await expect(runMember(config)).rejects.toMatchObject({ name: 'BackendUnavailableError' })
    await writeFile(join(config.dir, 'report.json'), 'an earlier report of the member')
    await expect(runMember(config)).rejects.toMatchObject({ name: 'BackendUnavailableError' })
    await rm(join(config.dir, 'report.json'))
    await symlink(victim, join(config.dir, 'report.json'))
    await expect(runMember(config)).rejects.toMatchObject({ ...refused, message: expect.stringContaining('"report.json"') })
    expect(await readFile(victim, 'utf8')).toBe('mine')
    // A member dir of a version before the marker (its ledger copy and report, no marker) is taken, and marked.
    await rm(config.dir, { recursive: true, force: true })
    await mkdir(join(config.dir, 'ledger'), { recursive: true })
    await writeFile(join(config.dir, 'report.json'), 'an earlier version\'s report')
    await expect(runMember(config)).rejects.toMatchObject({ name: 'BackendUnavailableError' })
    expect(await readdir(config.dir)).toContain('.conclave-member')
  }, 60_000)

  // Found red-teaming: only the files a member replaces at the top were checked, so a folder it
  // writes into made a link to someone's folder (before its first start, or since) had the ledger
  // copy, store blocks or agent memory written there, beside and over the owner's files.
  it('is refused, before anything is written, where a folder it writes into (or one inside it) is a link or not a folder', async () => {
    const root = await tempDir()
    const victim = join(root, 'theirs')
    const refused = { name: 'RunDirectoryError', code: 'ERR_RUN_DIRECTORY' }
    const config = await founderIn(root)
    const plant = [
      { path: 'ledger', make: async (p: string) => symlink(victim, p) },
      { path: 'store', make: async (p: string) => symlink(victim, p) },
      { path: 'agents', make: async (p: string) => symlink(victim, p) },
      { path: 'agents/agent-1', make: async (p: string) => { await mkdir(join(config.dir, 'agents'), { recursive: true }); await symlink(victim, p) } },
      { path: 'store', make: async (p: string) => writeFile(p, 'a file, not the store') }
    ]
    for (const marked of [false, true]) {
      for (const { path, make } of plant) {
        await rm(config.dir, { recursive: true, force: true })
        await rm(victim, { recursive: true, force: true })
        await mkdir(victim)
        await writeFile(join(victim, 'tangle.jsonl'), 'mine')
        // Marked: the member ran there once (and stopped, as nobody else came); the link was made since.
        if (marked) await expect(runMember(config)).rejects.toMatchObject({ name: 'BackendUnavailableError' })
        else await mkdir(config.dir)
        await rm(join(config.dir, path), { recursive: true, force: true })
        await make(join(config.dir, path))
        const before = (await readdir(config.dir, { recursive: true })).sort()
        // Not marked, the member's folder there is the user's, whatever is inside it.
        const top = path.split('/')[0] ?? path
        await expect(runMember(config), `${path}, marked: ${marked}`).rejects.toMatchObject({ ...refused, message: expect.stringContaining(`"${marked ? path : top}"`) })
        expect((await readdir(config.dir, { recursive: true })).sort()).toEqual(before)
        expect(await readdir(victim)).toEqual(['tangle.jsonl'])
        expect(await readFile(join(victim, 'tangle.jsonl'), 'utf8')).toBe('mine')
      }
    }
  }, 120_000)
})
