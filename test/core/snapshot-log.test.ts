import { execFileSync } from 'node:child_process'
import { readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { SnapshotLog } from '../../src/core/snapshot-log.ts'
import { tempDir } from '../federation/helpers.ts'

/** Whether this process holds `path` open (Linux: /proc/self/fd). */
async function holdsOpen (path: string): Promise<boolean> {
  const fds = await readdir('/proc/self/fd')
  const targets = await Promise.all(fds.map(async fd => await readlink(join('/proc/self/fd', fd)).catch(() => '')))
  return targets.includes(path)
}

describe('a snapshot log', () => {
  afterEach(() => { vi.useRealTimers() })

  it('keeps its log open between appends, closes it once appends stop, and opens it again for the next', async () => {
    const path = join(await tempDir(), 'memory.json')
    const { log } = await SnapshotLog.open(path)
    await log.rewrite('{"n":0}')
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    await log.append('{"n":1}', () => '{}')
    await log.append('{"n":2}', () => '{}')
    expect(await holdsOpen(log.logPath)).toBe(true)
    await vi.advanceTimersByTimeAsync(1000)
    expect(await holdsOpen(log.logPath)).toBe(false)
    await log.append('{"n":3}', () => '{}')
    await log.close()
    expect(await holdsOpen(log.logPath)).toBe(false)
    expect((await SnapshotLog.open(path)).contents).toEqual({ snapshot: '{"n":0}', records: ['{"n":1}', '{"n":2}', '{"n":3}'] })
  })

  it('after a rewrite, appends go to the new log, not the file it replaced', async () => {
    const path = join(await tempDir(), 'memory.json')
    const { log } = await SnapshotLog.open(path)
    await log.rewrite('{"v":1}')
    await log.append('{"n":1}', () => '{}')
    await log.rewrite('{"v":2}')
    await log.append('{"n":2}', () => '{}')
    await log.close()
    expect((await SnapshotLog.open(path)).contents).toEqual({ snapshot: '{"v":2}', records: ['{"n":2}'] })
  })

  /** A memory of one snapshot and an empty log, closed (as after its idle close). */
  const closedLog = async (): Promise<{ dir: string, path: string, log: SnapshotLog }> => {
    const dir = await tempDir()
    const path = join(dir, 'memory.json')
    const { log } = await SnapshotLog.open(path)
    await log.rewrite('{"n":0}')
    await log.close()
    return { dir, path, log }
  }

  // Found in review: both files were read with readIfExists, which waited on a FIFO for good and
  // followed a link (an agent's memory taken from someone else's file).
  it('refuses a FIFO or a link in place of the snapshot or its log at once, naming it', async () => {
    for (const at of ['', '.log']) {
      for (const plant of ['fifo', 'link']) {
        const { dir, path } = await closedLog()
        const stray = path + at
        await rm(stray)
        if (plant === 'fifo') execFileSync('mkfifo', [stray])
        else {
          await writeFile(join(dir, 'other'), at === '' ? '{"n":0}' : '')
          await symlink(join(dir, 'other'), stray)
        }
        const err = await SnapshotLog.open(path).catch((e: unknown) => e)
        expect(err).toMatchObject({ name: 'DamagedFileError', message: expect.stringContaining(stray) })
        expect(String(err)).toContain('move it away')
      }
    }
  }, 5_000)

  // Found in review: an append opened the log again (after its idle close) with 'r+', which
  // followed a link put in its place and wrote the record into the linked file.
  it('refuses a FIFO or a link put in place of the log before an append, naming it, and writes nothing through the link', async () => {
    for (const plant of ['fifo', 'link']) {
      const { dir, path, log } = await closedLog()
      const other = join(dir, 'other')
      await writeFile(other, await readFile(`${path}.log`))
      const before = await readFile(other)
      await rm(`${path}.log`)
      if (plant === 'fifo') execFileSync('mkfifo', [`${path}.log`])
      else await symlink(other, `${path}.log`)
      const err = await log.append('{"n":1}', () => '{"n":1}').catch((e: unknown) => e)
      expect(err).toMatchObject({ name: 'DamagedFileError', message: expect.stringContaining(`${path}.log`) })
      expect(String(err)).toContain('move it away')
      expect(await readFile(other)).toEqual(before)
      await log.close()
    }
  }, 5_000)
})
