import { unixfs, type UnixFS } from '@helia/unixfs'
import { FsBlockstore } from 'blockstore-fs'
import { FsDatastore } from 'datastore-fs'
import { createHeliaLight, type Helia } from 'helia'
import type { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { join } from 'node:path'
import { ConclaveError, ContentMismatchError, ContentNotFoundError, PayloadTooLargeError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { AbortOptions } from '../core/options.ts'
import type { ContentStore, GetOptions } from './index.ts'
import { DEFAULT_MAX_BYTES, importerOptions, parseCid } from './unixfs-settings.ts'

export interface HeliaStoreOptions {
  /** Blocks go to `dir/blocks`, pins to `dir/datastore`. */
  dir: string
  logger?: Logger
}

/**
 * The embedded content store: Helia with no networking at all (createHeliaLight: no
 * libp2p, no block brokers) over a file blockstore. Every block read is re-hashed
 * against its CID, because a file blockstore trusts its disk.
 */
export async function createHeliaStore (options: HeliaStoreOptions): Promise<ContentStore> {
  const blockstore = new VerifyingFsBlockstore(join(options.dir, 'blocks'))
  const datastore = new FsDatastore(join(options.dir, 'datastore'))
  await blockstore.open()
  await datastore.open()
  const helia = createHeliaLight({ blockstore, datastore, start: false } as Parameters<typeof createHeliaLight>[0])
  await helia.start()
  return new HeliaStore(helia, unixfs(helia))
}

class HeliaStore implements ContentStore {
  readonly #helia: Helia
  readonly #fs: UnixFS

  constructor (helia: Helia, fs: UnixFS) {
    this.#helia = helia
    this.#fs = fs
  }

  async put (bytes: Uint8Array, options: AbortOptions = {}): Promise<string> {
    options.signal?.throwIfAborted()
    const cid = await this.#fs.addBytes(bytes, { ...importerOptions, signal: options.signal })
    return cid.toString()
  }

  async get (text: string, options: GetOptions = {}): Promise<Uint8Array> {
    const cid = parseCid(text)
    options.signal?.throwIfAborted()
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
    return await readVerified(text, async () => {
      const stat = await this.#fs.stat(cid, { offline: true, signal: options.signal })
      const size = Number(stat.size)
      if (size > maxBytes) throw new PayloadTooLargeError(`content ${text} has ${size} bytes, over the ${maxBytes}-byte limit`)
      const out = new Uint8Array(size)
      let at = 0
      for await (const chunk of this.#fs.cat(cid, { offline: true, signal: options.signal })) {
        if (at + chunk.length > size) throw new ContentMismatchError(`content ${text} is longer than its DAG says`)
        out.set(chunk, at)
        at += chunk.length
      }
      if (at !== size) throw new ContentMismatchError(`content ${text} is shorter than its DAG says`)
      return out
    })
  }

  async has (text: string, options: AbortOptions = {}): Promise<boolean> {
    return this.#helia.blockstore.has(parseCid(text), options)
  }

  async pin (text: string, options: AbortOptions = {}): Promise<void> {
    const cid = parseCid(text)
    if (await this.#helia.pins.isPinned(cid, options)) return
    await readVerified(text, async () => {
      for await (const _ of this.#helia.pins.add(cid, { ...options, offline: true } as AbortOptions)) { /* walks and pins every block */ }
    })
  }

  async isPinned (text: string, options: AbortOptions = {}): Promise<boolean> {
    return this.#helia.pins.isPinned(parseCid(text), options)
  }

  async close (): Promise<void> {
    await this.#helia.stop()
  }
}

/** Maps whatever Helia throws on a missing or undecodable block to the store's named errors. */
async function readVerified<T> (cid: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read()
  } catch (err) {
    if (err instanceof ConclaveError || (err as Error).name === 'AbortError') throw err
    if ((err as Error).name === 'NotFoundError' || /not found|offline/i.test((err as Error).name)) {
      throw new ContentNotFoundError(`the store does not hold ${cid}`, { cause: err })
    }
    throw new ContentMismatchError(`content ${cid} does not decode: a block is damaged`, { cause: err })
  }
}

/** A file blockstore that re-hashes each block it reads. */
class VerifyingFsBlockstore extends FsBlockstore {
  override async * get (cid: CID, options?: AbortOptions): AsyncGenerator<Uint8Array> {
    const chunks: Uint8Array[] = []
    for await (const chunk of super.get(cid, options)) chunks.push(chunk)
    const bytes = concat(chunks)
    await assertBlockHash(cid, bytes)
    yield bytes
  }
}

async function assertBlockHash (cid: CID, bytes: Uint8Array): Promise<void> {
  if (cid.multihash.code !== sha256.code) throw new ContentMismatchError(`block ${cid} uses a hash other than sha2-256`)
  const digest = await sha256.digest(bytes)
  if (!equal(digest.bytes, cid.multihash.bytes)) throw new ContentMismatchError(`block ${cid} does not hash to its CID: the store is damaged`)
}

/**
 * Re-hashes every block under `dir/blocks`, referenced or not, and returns the CIDs of
 * those that do not match: the audit's check that every byte of the store is intact.
 */
export async function verifyAllBlocks (dir: string): Promise<string[]> {
  const blockstore = new FsBlockstore(join(dir, 'blocks'))
  await blockstore.open()
  const bad: string[] = []
  try {
    for await (const { cid, bytes } of blockstore.getAll()) {
      const chunks: Uint8Array[] = []
      for await (const chunk of bytes) chunks.push(chunk)
      try {
        await assertBlockHash(cid, concat(chunks))
      } catch {
        bad.push(cid.toString())
      }
    }
  } finally {
    await blockstore.close()
  }
  return bad
}

function concat (chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
  let at = 0
  for (const c of chunks) { out.set(c, at); at += c.length }
  return out
}

function equal (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i])
}
