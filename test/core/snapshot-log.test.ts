import { readdir, readlink } from 'node:fs/promises'
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
})
