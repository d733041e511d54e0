import * as dagPb from '@ipld/dag-pb'
import { FsBlockstore } from 'blockstore-fs'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { mkdir, readdir, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createHeliaStore, inspectStoreDir, verifyAllBlocks } from '../../src/storage/helia.ts'
import type { ContentStore } from '../../src/storage/index.ts'
import { MAX_BLOCK_BYTES } from '../../src/storage/unixfs-settings.ts'
import { contentStoreTests, pseudoRandom } from '../conformance/content-store.ts'
import { flip, openHelia, storeFiles, type StoreFile } from './helia-helpers.ts'

const dirs = new WeakMap<ContentStore, string>()
const open = async (dir?: string): Promise<ContentStore> => {
  const opened = await openHelia(dir)
  dirs.set(opened.store, opened.dir)
  return opened.store
}

contentStoreTests('helia', {
  setup: () => open(),
  teardown: async (s) => { await s.close(); await rm(dirs.get(s) as string, { recursive: true, force: true }) },
  reopen: async (s) => { await s.close(); return open(dirs.get(s)) }
})

const failures = async (store: ContentStore, cids: string[]): Promise<string[]> =>
  (await Promise.allSettled(cids.map(c => store.get(c)))).map(r => r.status === 'rejected' ? (r.reason as Error).name : 'ok')

describe('helia store: damage on disk', () => {
  it('refuses content when any byte of any of its block files flips (ContentMismatchError); verifyAllBlocks names the block', async () => {
    const { store, dir } = await openHelia()
    const big = pseudoRandom(262_144 + 5_000, 21) // 2 raw leaves + a dag-pb root
    const small = new TextEncoder().encode('a single raw block')
    const bigCid = await store.put(big)
    const smallCid = await store.put(small)
    const files = await storeFiles(dir, 'blocks')
    expect(files.length).toBe(4)
    expect(await verifyAllBlocks(dir)).toEqual([])
    for (const { file, bytes, cid } of files) {
      const holder = cid === smallCid ? 'small' : 'big'
      // Every byte of the small blocks (the dag-pb root, the single raw block); a spread of bytes in the 256 KiB leaves.
      const positions = bytes.length < 1000 ? [...bytes.keys()] : [0, 1, 4095, bytes.length >> 1, bytes.length - 2, bytes.length - 1]
      for (const at of positions) {
        await writeFile(file, flip(bytes, at))
        expect(await failures(store, [bigCid, smallCid]), `${file} byte ${at}`)
          .toEqual(holder === 'big' ? ['ContentMismatchError', 'ok'] : ['ok', 'ContentMismatchError'])
        expect(await verifyAllBlocks(dir)).toEqual([cid])
      }
      await writeFile(file, bytes)
    }
    expect(await failures(store, [bigCid, smallCid])).toEqual(['ok', 'ok'])
    expect(await verifyAllBlocks(dir)).toEqual([])
    await store.close()
  })

  it('refuses content when a leaf block file is one byte longer or shorter than its block, however its first bytes read (ContentMismatchError)', async () => {
    const { store, dir } = await openHelia()
    const bytes = pseudoRandom(3 * 262_144, 22)
    const cid = await store.put(bytes)
    const leaf = (await storeFiles(dir, 'blocks')).find(f => f.bytes.length === 262_144) as StoreFile
    for (const damaged of [Buffer.concat([leaf.bytes, Buffer.of(0)]), leaf.bytes.subarray(0, -1)]) {
      await writeFile(leaf.file, damaged)
      await expect(store.get(cid)).rejects.toMatchObject({ name: 'ContentMismatchError' })
    }
    await writeFile(leaf.file, leaf.bytes)
    expect(await store.get(cid)).toEqual(bytes)
    await store.close()
  })

  it('refuses a dag-pb block that hashes right but does not decode, or is not UnixFS (ContentMismatchError)', async () => {
    const { store, dir } = await openHelia()
    const blocks = new FsBlockstore(join(dir, 'blocks'))
    await blocks.open()
    for (const bytes of [Uint8Array.of(0xff, 0xff, 0xff), new Uint8Array(0) /* a dag-pb node with no Data */]) {
      const cid = CID.createV1(0x70, await sha256.digest(bytes))
      await blocks.put(cid, bytes)
      await expect(store.get(cid.toString())).rejects.toMatchObject({ name: 'ContentMismatchError', code: 'ERR_CONTENT_MISMATCH' })
    }
    await store.close()
  })

  it('refuses a file DAG whose sizes do not add up: a leaf longer than its parent says, or links without sizes, and one of more blocks than its size is stored in (ContentMismatchError)', async () => {
    const { store, dir } = await openHelia()
    const blocks = new FsBlockstore(join(dir, 'blocks'))
    await blocks.open()
    const leaf = async (bytes: Uint8Array): Promise<CID> => {
      const cid = CID.createV1(raw.code, await sha256.digest(bytes))
      await blocks.put(cid, bytes)
      return cid
    }
    const root = async (links: CID[], blockSizes: bigint[]): Promise<string> => {
      const bytes = dagPb.encode({ Data: new UnixFS({ type: 'file', blockSizes }).marshal(), Links: links.map(Hash => ({ Hash })) })
      const cid = CID.createV1(dagPb.code, await sha256.digest(bytes))
      await blocks.put(cid, bytes)
      return cid.toString()
    }
    const a = await leaf(new Uint8Array(10).fill(1))
    const b = await leaf(new Uint8Array(11).fill(2))
    // A chunk linked twice, as the importer writes a file of two equal chunks.
    const chunk = await leaf(new Uint8Array(262_144).fill(1))
    expect(await store.get(await root([chunk, chunk], [262_144n, 262_144n]))).toEqual(new Uint8Array(524_288).fill(1))
    // Two leaves for 20 bytes: more blocks than the importer stores a file of that size in (unixfs-reader.test.ts).
    for (const bad of [await root([a, a], [10n, 10n]), await root([a, b], [10n, 10n]), await root([a, b], [10n]), await root([a], [10n, 11n])]) {
      await expect(store.get(bad)).rejects.toMatchObject({ name: 'ContentMismatchError', code: 'ERR_CONTENT_MISMATCH' })
    }
    await store.close()
  })

  it('refuses a block file larger than any block the importer writes, by its size before reading it, even one hashing to its CID (ContentMismatchError); the audit names both', async () => {
    const { store, dir } = await openHelia()
    const blocks = new FsBlockstore(join(dir, 'blocks'))
    await blocks.open()
    const over = new Uint8Array(MAX_BLOCK_BYTES + 1).fill(3)
    const overCid = CID.createV1(raw.code, await sha256.digest(over))
    await blocks.put(overCid, over)
    const hugeCid = await store.put(new TextEncoder().encode('grown on disk'))
    const huge = (await storeFiles(dir, 'blocks')).find(f => f.cid === hugeCid) as StoreFile
    await truncate(huge.file, 256 * 1024 * 1024) // sparse: read whole, it costs 256 MiB of memory
    for (const cid of [overCid.toString(), hugeCid]) {
      await expect(store.get(cid)).rejects.toMatchObject({ name: 'ContentMismatchError', message: expect.stringMatching(/larger than any block this store writes/) })
    }
    expect(await inspectStoreDir(dir)).toEqual(expect.arrayContaining([overCid, hugeCid].map(where => ({ where: where.toString(), problem: expect.stringMatching(/larger than any block this store writes/) }))))
    await store.close()
  })

  it('reports a DAG with a missing leaf as ContentNotFoundError', async () => {
    const { store, dir } = await openHelia()
    const cid = await store.put(pseudoRandom(600_000, 4))
    const leaf = (await storeFiles(dir, 'blocks')).find(f => f.bytes.length === 262_144)
    await rm(leaf?.file as string)
    await expect(store.get(cid)).rejects.toMatchObject({ name: 'ContentNotFoundError' })
    await expect(store.pin(cid)).rejects.toMatchObject({ name: 'ContentNotFoundError' })
    await store.close()
  })

  it('pins what it wrote without reading its leaves back, and every block is recorded as pinned', async () => {
    const { store, dir } = await openHelia()
    const cid = await store.put(pseudoRandom(3 * 262_144 + 17, 5))
    await store.pin(cid)
    expect(await store.isPinned(cid)).toBe(true)
    await store.close()
    expect(await inspectStoreDir(dir)).toEqual([])
  })

  it('writes a block its content repeats once, and any number of puts of the same content at once leave whole blocks and no temporary file', async () => {
    const { store, dir } = await openHelia()
    // Eight identical zero chunks and three copies of a random chunk: one leaf file each, whatever the interleaving.
    const chunk = pseudoRandom(262_144, 41)
    const bytes = Buffer.concat([Buffer.alloc(8 * 262_144), chunk, chunk, chunk, pseudoRandom(1000, 42)])
    const cids = await Promise.all(Array.from({ length: 4 }, async () => store.put(bytes)))
    expect(new Set(cids).size).toBe(1)
    await store.pin(cids[0] as string)
    expect(Buffer.from(await store.get(cids[0] as string))).toEqual(bytes)
    const files = await storeFiles(dir, 'blocks')
    expect(files.filter(f => f.rel.endsWith('.tmp'))).toEqual([])
    // zero leaf, random leaf, the short tail and the root: every file's bytes hash to a distinct block.
    expect(files.filter(f => f.bytes.length === 262_144).map(f => f.cid).sort()).toEqual([...new Set(files.filter(f => f.bytes.length === 262_144).map(f => f.cid))].sort())
    expect(files.filter(f => f.bytes.length === 262_144)).toHaveLength(2)
    await store.close()
    expect(await inspectStoreDir(dir)).toEqual([])
  })

  it('puts again after its block folders were removed by hand: the folders are made again', async () => {
    const { store, dir } = await openHelia()
    const bytes = pseudoRandom(3 * 262_144 + 5, 43)
    const cid = await store.put(bytes)
    for (const entry of await readdir(join(dir, 'blocks'))) await rm(join(dir, 'blocks', entry), { recursive: true })
    expect(await store.put(bytes)).toBe(cid)
    await store.pin(cid)
    expect(Buffer.from(await store.get(cid))).toEqual(Buffer.from(bytes))
    await store.close()
  })

  it('pins made at once of content sharing blocks each record their name on every shared block', async () => {
    const { store, dir } = await openHelia()
    const shared = pseudoRandom(4 * 262_144, 24)
    const cids = await Promise.all([25, 26, 27].map(seed => store.put(Buffer.concat([shared, pseudoRandom(262_144 + seed, seed)]))))
    await Promise.all(cids.map(cid => store.pin(cid)))
    await store.close()
    expect(await inspectStoreDir(dir)).toEqual([])
  })

  it('a pin made after reopening the store keeps the names that earlier pins recorded on shared blocks', async () => {
    const { store, dir } = await openHelia()
    const shared = pseudoRandom(4 * 262_144, 28)
    const [first, second] = [29, 30].map(seed => Buffer.concat([shared, pseudoRandom(262_144 + seed, seed)]))
    await store.pin(await store.put(first as Buffer))
    await store.close()
    const reopened = await open(dir)
    await reopened.pin(await reopened.put(second as Buffer))
    await reopened.close()
    expect(await inspectStoreDir(dir)).toEqual([])
  })

  it('a pin whose block records cannot be written fails, no pin is recorded, and the store refuses to pin again until reopened', async () => {
    const { store, dir } = await openHelia()
    const cid = await store.put(pseudoRandom(40 * 262_144, 23))
    // A directory where the pin log goes: its first append fails, after Helia's pin has moved on.
    await mkdir(join(dir, 'datastore', 'pinned-blocks.log'))
    await expect(store.pin(cid)).rejects.toMatchObject({ name: 'StoreWriteError', message: expect.stringContaining('is a folder'), cause: { name: 'StrayFileError' } })
    expect(await store.isPinned(cid)).toBe(false)
    await expect(readdir(join(dir, 'datastore', 'pin'))).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(store.pin(cid)).rejects.toMatchObject({ name: 'StoreWriteError', message: expect.stringContaining('reopen the store') })
    await store.close()
    await rm(join(dir, 'datastore', 'pinned-blocks.log'), { recursive: true })
    const reopened = await open(dir)
    await reopened.pin(cid)
    expect(await reopened.isPinned(cid)).toBe(true)
    await reopened.close()
    expect(await inspectStoreDir(dir)).toEqual([])
  })

  it('a pin killed after its blocks were recorded as pinned, before its own record, is not taken as done: pinning again completes it', async () => {
    const { store, dir } = await openHelia()
    const cid = await store.put(pseudoRandom(3 * 262_144 + 17, 8))
    await store.pin(cid)
    await store.close()
    // Helia writes a pin's own record last: what a kill just before it leaves.
    const [pin, ...others] = await readdir(join(dir, 'datastore', 'pin'))
    expect(others).toEqual([])
    await rm(join(dir, 'datastore', 'pin', pin as string))
    const reopened = await open(dir)
    expect(await reopened.isPinned(cid)).toBe(false)
    await reopened.pin(cid)
    expect(await reopened.isPinned(cid)).toBe(true)
    await reopened.close()
    expect(await inspectStoreDir(dir)).toEqual([])
  })

  it('reads and verifies every block of content it did not write in this life before pinning it', async () => {
    const { store, dir } = await openHelia()
    const cid = await store.put(pseudoRandom(3 * 262_144, 6))
    await store.close()
    const leaf = (await storeFiles(dir, 'blocks')).find(f => f.bytes.length === 262_144) as StoreFile
    await writeFile(leaf.file, flip(leaf.bytes, 7))
    const reopened = await open(dir)
    await expect(reopened.pin(cid)).rejects.toMatchObject({ name: 'ContentMismatchError' })
    expect(await reopened.isPinned(cid)).toBe(false)
    await reopened.close()
  })

  it('knows the size before reading the leaves: a too-large DAG is refused even with its leaves missing', async () => {
    const { store, dir } = await openHelia()
    const cid = await store.put(pseudoRandom(1_048_577, 8))
    for (const f of await storeFiles(dir, 'blocks')) if (f.bytes.length === 262_144) await rm(f.file)
    await expect(store.get(cid, { maxBytes: 1_048_576 })).rejects.toMatchObject({ name: 'PayloadTooLargeError' })
    await store.close()
  })
})

describe('helia store opened read-only (the audit)', () => {
  it('reads and verifies content, refuses put and pin, and creates or writes nothing', async () => {
    const { store, dir } = await openHelia()
    const bytes = pseudoRandom(300_000, 5)
    const cid = await store.put(bytes)
    await store.pin(cid)
    await store.close()
    await rm(join(dir, 'datastore', 'version.data'))
    const before = (await storeFiles(dir, 'blocks')).concat(await storeFiles(dir, 'datastore')).map(f => [f.rel, f.cid])
    const readOnly = await createHeliaStore({ dir, readOnly: true })
    expect(await readOnly.get(cid)).toEqual(bytes)
    await expect(readOnly.put(new Uint8Array([1]))).rejects.toMatchObject({ name: 'ConfigError' })
    await expect(readOnly.pin(cid)).rejects.toMatchObject({ name: 'ConfigError' })
    await readOnly.close()
    expect((await storeFiles(dir, 'blocks')).concat(await storeFiles(dir, 'datastore')).map(f => [f.rel, f.cid])).toEqual(before)

    const nothing = join(dir, 'not-a-store')
    const empty = await createHeliaStore({ dir: nothing, readOnly: true })
    await expect(empty.get(cid)).rejects.toMatchObject({ name: 'ContentNotFoundError' })
    await empty.close()
    await expect(readdir(nothing)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
