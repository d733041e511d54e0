import fc from 'fast-check'
import { fstatSync, statSync } from 'node:fs'
import { appendFile, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Logger } from '../../src/core/logger.ts'
import { silentLogger } from '../../src/core/logger.ts'
import { WAITING_FILE, WaitingFile } from '../../src/ledger/waiting.ts'
import type { ReplicaBlock } from '../../src/transport/index.ts'
import { withSyncs } from '../core/file-syncs.ts'
import { expectRefusedInPlaceOf } from './helpers.ts'

// The file a replica keeps its waiting blocks in (src/ledger/waiting.ts): a copy's own memory,
// but read back after a crash that may have cut a line short, so whatever it holds is checked.

const block = (n: number, parents: string[] = []): ReplicaBlock => ({ id: n.toString(16).padStart(64, '0'), parents, record: `a.${n}.b`, time: 1_800_000_000 + n, pow: n })
const lines = (...items: unknown[]): string => items.map(i => JSON.stringify(i) + '\n').join('')

describe('the waiting blocks\' file', () => {
  it('gives back the blocks still waiting, in the order they began to, whatever else the file holds', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.oneof(fc.string(), fc.json(), fc.constant('{"gone":'), fc.constant('\u0000')), { maxLength: 8 }), async (junk) => {
      const dir = await mkdtemp(join(tmpdir(), 'conclave-waiting-file-'))
      const warned: string[] = []
      const logger: Logger = { ...silentLogger, warn: (message: string) => { warned.push(message) } }
      const [a, b, c] = [block(1), block(2, ['f'.repeat(64)]), block(3)]
      await writeFile(join(dir, WAITING_FILE), lines(a, b) + junk.map(j => j.replaceAll('\n', ' ') + '\n').join('') + lines({ gone: a.id }, c))
      const { blocks } = await WaitingFile.open(dir, logger)
      expect(blocks).toEqual([b, c])
      expect(warned.length).toBeLessThanOrEqual(junk.length)
    }), { seed: 1406, numRuns: 200 })
  })

  it('is written anew once nothing waits, and notes each block that stops waiting until then', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-waiting-file-'))
    const { file } = await WaitingFile.open(dir, silentLogger)
    const [a, b] = [block(1), block(2)]
    await file.add(a)
    await file.add(b)
    await file.settle([a.id], 1, () => [b])
    expect((await WaitingFile.open(dir, silentLogger)).blocks).toEqual([b])
    // A line a crash cut short is left out, the blocks before it kept, and the next one noted after it.
    await appendFile(join(dir, WAITING_FILE), JSON.stringify(block(3)).slice(0, 40))
    const reopened = await WaitingFile.open(dir, silentLogger)
    expect(reopened.blocks).toEqual([b])
    await reopened.file.add(block(4))
    expect((await WaitingFile.open(dir, silentLogger)).blocks).toEqual([b, block(4)])
    await reopened.file.settle([b.id, block(4).id], 0, () => [])
    expect((await WaitingFile.open(dir, silentLogger)).blocks).toEqual([])
  })

  // Only a kill was thought of: the lines were not synced, so after a power cut the Matrix sync
  // token, saved once the block was noted, could be on the disk and the block's line not.
  it('resolves each note only once it is on the disk, and writes the file anew only from a synced copy', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-waiting-file-'))
    const path = join(dir, WAITING_FILE)
    const { file } = await WaitingFile.open(dir, silentLogger)
    /** The files synced (inode, and size as the sync began). */
    const synced: Array<{ ino: number, size: number }> = []
    const [a, b] = [block(1), block(2)]
    await withSyncs(handle => { const { ino, size } = fstatSync(handle.fd); synced.push({ ino, size }) }, async () => {
      await file.add(a)
      expect(synced).toContainEqual({ ino: statSync(path).ino, size: statSync(path).size })
      // The file was new: its name in the folder is synced too.
      expect(synced.map(s => s.ino)).toContain(statSync(dir).ino)
      await file.add(b)
      await file.settle([a.id], 1, () => [b])
      expect(synced).toContainEqual({ ino: statSync(path).ino, size: statSync(path).size })
      await file.settle([b.id], 0, () => [])
      expect(synced).toContainEqual({ ino: statSync(path).ino, size: 0 })
    })
  })

  // Found in review: the file was read with readIfExists, which waited on a FIFO for good and
  // followed a link: blocks from another copy's file were taken back as this copy's.
  it('refuses a FIFO or a link in its place at once, naming it', async () => {
    await expectRefusedInPlaceOf(WAITING_FILE, lines(block(1)), async dir => WaitingFile.open(dir, silentLogger))
  }, 5_000)
})
