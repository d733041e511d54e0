import * as cborg from 'cborg'
import { CID } from 'multiformats/cid'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyStoreDir } from '../../src/storage/helia.ts'
import { parsePinLog, pinLogLine } from '../../src/storage/pin-datastore.ts'
import { pseudoRandom } from '../conformance/content-store.ts'
import { flip, openHelia, storeFiles } from './helia-helpers.ts'

/** A closed store holding a pinned two-leaf file, a pinned single block and an unpinned one. */
async function fixture (): Promise<{ dir: string, bigCid: string, smallCid: string }> {
  const { store, dir } = await openHelia()
  const bigCid = await store.put(pseudoRandom(262_144 + 300, 31))
  const smallCid = await store.put(pseudoRandom(40, 32))
  await store.put(pseudoRandom(50, 33))
  await store.pin(bigCid)
  await store.pin(smallCid)
  await store.close()
  return { dir, bigCid, smallCid }
}

describe('verifyStoreDir: every byte of a Helia store directory', () => {
  it('passes an intact store', async () => {
    const { dir } = await fixture()
    expect(await verifyStoreDir(dir)).toEqual([])
  })

  it('names the datastore file when any byte of any datastore file flips', async () => {
    const { dir } = await fixture()
    const files = await storeFiles(dir, 'datastore')
    expect(files.map(f => f.rel.split('/').slice(0, 2).join('/')).sort()).toEqual([
      'datastore/pin', 'datastore/pin', 'datastore/pinned-blocks.log', 'datastore/version.data'
    ])
    for (const { file, rel, bytes } of files) {
      for (const at of bytes.keys()) {
        await writeFile(file, flip(bytes, at))
        const damaged = await verifyStoreDir(dir)
        expect(damaged, `${rel} byte ${at}`).toContain(rel)
        expect(damaged.filter(d => !d.startsWith('datastore/')), `${rel} byte ${at}`).toEqual([])
      }
      await writeFile(file, bytes)
    }
    expect(await verifyStoreDir(dir)).toEqual([])
  })

  it('names a damaged block by its CID, and again by the pinned CID that needs it', async () => {
    const { dir, bigCid } = await fixture()
    const root = (await storeFiles(dir, 'blocks')).find(f => f.bytes.length < 1000 && f.bytes[0] === 0x12) // dag-pb: starts with a link
    if (root === undefined) throw new Error('no dag-pb root in the fixture')
    await writeFile(root.file, flip(root.bytes, 7))
    expect(await verifyStoreDir(dir)).toEqual([root.cid, bigCid].sort())
  })

  it('names renamed, missing and stray files', async () => {
    const { dir, smallCid } = await fixture()
    const blocks = await storeFiles(dir, 'blocks')
    const small = blocks.find(f => f.cid === smallCid)
    const leaf = blocks.find(f => f.bytes.length === 262_144)
    const [record] = (await storeFiles(dir, 'datastore')).filter(f => f.rel === 'datastore/pinned-blocks.log')
    if (small === undefined || leaf === undefined || record === undefined) throw new Error('fixture changed')
    // A block file renamed with one character changed: its name no longer matches its bytes.
    const name = basename(small.file)
    const renamed = join(dirname(small.file), name.slice(0, 5) + (name[5] === 'A' ? 'B' : 'A') + name.slice(6))
    await rename(small.file, renamed)
    await rm(leaf.file)
    // One record's line gone from the middle of the pin log: every check after it fails.
    await writeFile(record.file, record.bytes.toString('latin1').split('\n').filter((_, i) => i !== 1).join('\n'), 'latin1')
    const stray = ['notes.txt', 'blocks/stray.data', 'blocks/AA/BCIQ.tmp', 'datastore/pin/extra.json']
    for (const rel of stray) {
      await mkdir(dirname(join(dir, rel)), { recursive: true })
      await writeFile(join(dir, rel), 'x')
    }
    const damaged = await verifyStoreDir(dir)
    for (const expected of [...stray, record.rel, leaf.cid, smallCid]) expect(damaged).toContain(expected)
  })

  it('reads block records an earlier version wrote as files beside the log, the log\'s record of a block winning over its file', async () => {
    const { dir } = await fixture()
    const log = join(dir, 'datastore', 'pinned-blocks.log')
    const lines = parsePinLog(await readFile(log), log).lines
    const [first, ...rest] = lines
    if (first === undefined || first.value === undefined) throw new Error('fixture changed')
    // As an earlier version left it: the first block's record a file, the log without it (its checks chained again).
    const file = join(dir, 'datastore', `${first.name}.data`)
    await mkdir(dirname(file), { recursive: true })
    await writeFile(file, first.value)
    const rechained = (entries: typeof lines): string => {
      let check = ''
      return entries.map(l => {
        const line = pinLogLine(check, l.name, l.value)
        check = line.check
        return line.text
      }).join('')
    }
    await writeFile(log, rechained(rest), 'latin1')
    expect(await verifyStoreDir(dir)).toEqual([])
    // A stale file under a later record in the log: the log's counts.
    await writeFile(file, cborg.encode({ pinCount: 1, pinnedBy: [CID.parse('bafkqaaa').bytes] }))
    await writeFile(log, rechained(lines), 'latin1')
    expect(await verifyStoreDir(dir)).toEqual([])
    // Without the log's record, the stale file is the record, and it names a pin that does not hold the block.
    await writeFile(log, rechained(rest), 'latin1')
    expect(await verifyStoreDir(dir)).toContain(`datastore${first.name}.data`)
  })
})

