import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { importBytes } from 'ipfs-unixfs-importer'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { readUnixfsFile, type ReadBlock } from '../../src/storage/unixfs-reader.ts'
import { CHUNK_BYTES, DEFAULT_MAX_BYTES, importerOptions, MAX_BLOCK_BYTES, MAX_LINKS } from '../../src/storage/unixfs-settings.ts'
import { pseudoRandom } from '../conformance/content-store.ts'

/** Blocks in memory, and a reader over them that counts its reads. */
function blocks (): { put: (bytes: Uint8Array, codec?: number) => Promise<CID>, read: ReadBlock, reads: () => number, store: Map<string, Uint8Array> } {
  const store = new Map<string, Uint8Array>()
  let reads = 0
  return {
    store,
    put: async (bytes, codec = raw.code) => {
      const cid = CID.createV1(codec, await sha256.digest(bytes))
      store.set(cid.toString(), bytes)
      return cid
    },
    read: async cid => {
      reads++
      const bytes = store.get(cid.toString())
      if (bytes === undefined) throw new Error(`no block ${cid}`)
      return bytes
    },
    reads: () => reads
  }
}

/** A dag-pb file node linking `links` times to `child`, each link declaring `size` bytes. */
function node (child: CID, links: number, size: number): Uint8Array {
  const unixfs = new UnixFS({ type: 'file', blockSizes: Array.from({ length: links }, () => BigInt(size)) })
  return dagPb.encode(dagPb.prepare({ Data: unixfs.marshal(), Links: Array.from({ length: links }, () => ({ Hash: child, Tsize: size })) }))
}

/** `depth` nodes, each linking `fanOut` times to the one below, over one raw leaf: fanOut^depth leaves placed from depth + 1 blocks. */
async function fanOutBomb (b: ReturnType<typeof blocks>, leaf: Uint8Array, fanOut: number, depth: number): Promise<CID> {
  let child = await b.put(leaf)
  let size = leaf.length
  for (let d = 0; d < depth; d++) {
    child = await b.put(node(child, fanOut, size), dagPb.code)
    size *= fanOut
  }
  return child
}

describe('readUnixfsFile: only the layout this store\'s importer writes', () => {
  it('refuses a small DAG linking one shared leaf 40×40×40 times, whether the links say 0 bytes or 1, after a few reads (ContentMismatchError)', async () => {
    for (const leaf of [new Uint8Array(0), Uint8Array.of(7)]) {
      const b = blocks()
      const root = await fanOutBomb(b, leaf, 40, 3)
      expect(b.store.size).toBe(4)
      await expect(readUnixfsFile(root, b.read, { maxBytes: DEFAULT_MAX_BYTES })).rejects.toMatchObject({ name: 'ContentMismatchError' })
      expect(b.reads()).toBeLessThanOrEqual(3)
    }
  })

  it('refuses a node of more links than the importer puts in one, and a raw leaf larger than its chunk, before reading them', async () => {
    const b = blocks()
    const wide = await b.put(node(await b.put(Uint8Array.of(1)), MAX_LINKS + 1, 1), dagPb.code)
    await expect(readUnixfsFile(wide, b.read, { maxBytes: DEFAULT_MAX_BYTES })).rejects.toMatchObject({ name: 'ContentMismatchError' })
    expect(b.reads()).toBe(1)
    const big = b.store.size
    const large = await b.put(node(await b.put(new Uint8Array(CHUNK_BYTES + 1)), 2, CHUNK_BYTES + 1), dagPb.code)
    expect(b.store.size).toBe(big + 2)
    await expect(readUnixfsFile(large, b.read, { maxBytes: DEFAULT_MAX_BYTES })).rejects.toMatchObject({ name: 'ContentMismatchError' })
    expect(b.reads()).toBe(2)
  })

  it('reads what the importer writes, each block it placed read once: empty, one chunk, a full node, one chunk over it, zeros (one leaf linked many times), and 64 MiB', async () => {
    const contents = [
      new Uint8Array(0),
      Uint8Array.of(1),
      pseudoRandom(CHUNK_BYTES, 1),
      pseudoRandom(CHUNK_BYTES + 1, 2),
      pseudoRandom(2 * CHUNK_BYTES, 3),
      new Uint8Array(MAX_LINKS * CHUNK_BYTES),
      new Uint8Array(MAX_LINKS * CHUNK_BYTES + 1),
      new Uint8Array(DEFAULT_MAX_BYTES)
    ]
    for (const bytes of contents) {
      const b = blocks()
      let placed = 0
      const { cid } = await importBytes(bytes, { put: async (cid: CID, block: Uint8Array) => { placed++; b.store.set(cid.toString(), block); return cid } }, importerOptions)
      const read = await readUnixfsFile(cid, b.read, { maxBytes: DEFAULT_MAX_BYTES })
      expect(Buffer.from(read.buffer, read.byteOffset, read.length).equals(bytes), `${bytes.length} bytes`).toBe(true)
      expect(b.reads(), `${bytes.length} bytes`).toBe(placed)
      for (const block of b.store.values()) expect(block.length).toBeLessThanOrEqual(MAX_BLOCK_BYTES)
    }
  })
})
