import { unixfs, type UnixFS } from '@helia/unixfs'
import { FsBlockstore } from 'blockstore-fs'
import { NextToLast } from 'blockstore-fs/sharding'
import { createHeliaLight, type GraphNode, type GraphWalkerFactory, type Helia } from 'helia'
import { exporter } from 'ipfs-unixfs-exporter'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { existsSync } from 'node:fs'
import { mkdir, open, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BoundedMap } from '../core/bounded-map.ts'
import { mapConcurrently } from '../core/concurrently.ts'
import { ConclaveError, ConfigError, ContentMismatchError, ContentNotFoundError, InvalidRecordError, PayloadTooLargeError, StoreWriteError } from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import type { AbortOptions } from '../core/options.ts'
import { blockMatches, readBlockFile } from './helia-verify.ts'
import type { ContentStore, GetOptions } from './index.ts'
import { PinDatastore } from './pin-datastore.ts'
import { readUnixfsFile } from './unixfs-reader.ts'
import { DEFAULT_MAX_BYTES, importerOptions, MAX_BLOCK_BYTES, parseCid } from './unixfs-settings.ts'

export { inspectStoreDir, verifyAllBlocks, verifyStoreDir, type StoreDamage, type VerifyStoreOptions } from './helia-verify.ts'

export interface HeliaStoreOptions {
  /** Blocks go to `dir/blocks` (blockstore-fs), pins to `dir/datastore` (datastore-fs). */
  dir: string
  /** @default silentLogger */
  logger?: Logger
  /**
   * Read an existing store only (an audit): no folder or file is created or written (not
   * even the datastore's `version.data`), `put` and `pin` throw ConfigError. @default false
   */
  readOnly?: boolean
}

/**
 * The embedded content store: Helia with no networking at all (createHeliaLight: no
 * libp2p, no block brokers, every read `offline`) over a file blockstore.
 *
 * `get` is verified block by block: blockstore-fs trusts its disk, so the blockstore here
 * re-hashes every block it reads against its CID's multihash before Helia sees it. The
 * DAG is walked from the requested CID through links in verified blocks only, so the bytes
 * returned are exactly the ones the CID commits to; any damaged or undecodable block is a
 * ContentMismatchError naming the requested CID and the block.
 */
export async function createHeliaStore (options: HeliaStoreOptions): Promise<ContentStore> {
  const logger = options.logger ?? silentLogger
  if (options.readOnly === true) {
    // Pins live in the datastore, which reads never need: Helia keeps its own in memory.
    const blocks = new ReadOnlyBlockstore(join(options.dir, 'blocks'))
    const helia = createHeliaLight({ blockstore: blocks })
    await helia.start()
    return new HeliaStore(helia, blocks, logger)
  }
  const blockstore = new VerifyingFsBlockstore(join(options.dir, 'blocks'))
  const datastore = new PinDatastore(join(options.dir, 'datastore'))
  await blockstore.open()
  await datastore.open()
  const helia = createHeliaLight({ blockstore, datastore })
  await helia.start()
  return new HeliaStore(helia, blockstore, logger, datastore)
}

/** Raw leaves a pin checks at once. */
const LEAVES_IN_FLIGHT = 16

class HeliaStore implements ContentStore {
  readonly #helia: Helia
  readonly #fs: UnixFS
  readonly #blocks: VerifyingFsBlockstore
  readonly #logger: Logger
  /** Where Helia records pins; undefined when the store was opened read-only. */
  readonly #pins: PinDatastore | undefined
  /** The pin running, if any; settled either way. */
  #pinning: Promise<void> = Promise.resolve()
  /** Roots this store wrote itself: their blocks were hashed from the caller's bytes as they were stored. */
  readonly #written = new BoundedMap<string, true>(256)

  constructor (helia: Helia, blocks: VerifyingFsBlockstore, logger: Logger, pins?: PinDatastore) {
    this.#helia = helia
    this.#fs = unixfs(helia)
    this.#blocks = blocks
    this.#logger = logger
    this.#pins = pins
  }

  async put (bytes: Uint8Array, options: AbortOptions = {}): Promise<string> {
    this.#writable()
    if (!(bytes instanceof Uint8Array)) throw new InvalidRecordError('put takes a Uint8Array')
    options.signal?.throwIfAborted()
    const cid = await this.#fs.addBytes(bytes, { ...importerOptions, signal: options.signal })
    this.#written.set(cid.toString(), true)
    return cid.toString()
  }

  async get (text: string, options: GetOptions = {}): Promise<Uint8Array> {
    const cid = parseCid(text)
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
    options.signal?.throwIfAborted()
    return await this.#read(text, async () => await readUnixfsFile(cid, (block, o, into) => this.#blocks.read(block, o, into), { maxBytes, signal: options.signal }))
  }

  async has (text: string, options: AbortOptions = {}): Promise<boolean> {
    const cid = parseCid(text)
    options.signal?.throwIfAborted()
    return this.#helia.blockstore.has(cid, options)
  }

  async pin (text: string, options: AbortOptions = {}): Promise<void> {
    const pins = this.#writable()
    const cid = parseCid(text)
    options.signal?.throwIfAborted()
    // One pin at a time: Helia's pin reads each block's record and writes it back with its
    // own name added, so two pins sharing a block would each drop the other's name; and a
    // block record that fails to be written belongs to the one pin running.
    const run = this.#pinning.then(async () => { await this.#pin(cid, text, pins, options) })
    this.#pinning = run.catch(() => {})
    await run
  }

  async #pin (cid: CID, text: string, pins: PinDatastore, options: AbortOptions): Promise<void> {
    options.signal?.throwIfAborted()
    if (await this.#pinned(cid, options)) return
    const dag = await this.#read(text, async () => await this.#verifiedDag(cid, this.#written.has(text), options))
    try {
      for await (const _ of this.#helia.pins.add(cid, { signal: options.signal, offline: true, walker: listed(dag) } as AbortOptions)) { /* records every block as pinned */ }
    } catch (err) {
      // A pin stopped part-way still waits for the block records it began, so none is
      // written after it returns; its own failure is the one reported.
      await pins.settle().catch(() => {})
      const name = (err as Error).name
      if (name === 'AbortError' || name === 'TimeoutError' || err instanceof ConclaveError) throw err
      // Its blocks were read and verified above: what failed is recording the pin.
      throw new StoreWriteError(`pinning ${text}: the store could not record it (${name}: ${(err as Error).message})`, { cause: err })
    }
  }

  /**
   * Every block of `root`'s DAG, read and verified, for a pin: Helia's pin walker records
   * a DAG with missing blocks as pinned (its failed reads become unhandled rejections), so
   * the DAG is read here first, once, and Helia's pin walks this list instead of reading
   * every block again. The raw leaves of a DAG this store wrote itself (`own`) are only
   * checked to be there, not read: they were hashed from the caller's bytes on the way in.
   * Raw leaves are checked LEAVES_IN_FLIGHT at once, after the nodes above them.
   */
  async #verifiedDag (root: CID, own: boolean, options: AbortOptions): Promise<CID[]> {
    const read = { offline: true, signal: options.signal } as AbortOptions
    const dag: CID[] = []
    const leaves: CID[] = []
    const todo = [root]
    for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
      dag.push(next)
      if (next.code === raw.code) {
        leaves.push(next)
        continue
      }
      const entry = await exporter(next, this.#helia.blockstore, read)
      if (entry.type === 'file' || entry.type === 'directory') todo.push(...entry.node.Links.map(link => link.Hash))
    }
    await mapConcurrently(leaves, LEAVES_IN_FLIGHT, async leaf => {
      if (!own) await exporter(leaf, this.#helia.blockstore, read)
      else if (!await this.#helia.blockstore.has(leaf, options)) throw new ContentNotFoundError(`the store does not hold ${root} (block ${leaf} is missing)`)
    })
    return dag
  }

  async isPinned (text: string, options: AbortOptions = {}): Promise<boolean> {
    const cid = parseCid(text)
    options.signal?.throwIfAborted()
    return this.#pinned(cid, options)
  }

  /**
   * Whether the pin of `cid` itself is recorded. Helia's `isPinned` asks only whether its root
   * block is recorded as pinned, which a pin killed part-way already says: Helia records
   * every block (the root first) before the pin. Pinning again completes such a pin.
   */
  async #pinned (cid: CID, options: AbortOptions): Promise<boolean> {
    try {
      await this.#helia.pins.get(cid, options)
      return true
    } catch (err) {
      if ((err as Error).name === 'NotFoundError') return false
      throw err
    }
  }

  async close (): Promise<void> {
    await this.#helia.stop()
    // Helia leaves its stores open: the pin log's file is mine to sync and close.
    await this.#pins?.close()
  }

  #writable (): PinDatastore {
    if (this.#pins === undefined) throw new ConfigError('this store was opened read-only')
    return this.#pins
  }

  /** Maps whatever Helia throws on a missing, damaged or undecodable block to the store's named errors. */
  async #read<T> (cid: string, read: () => Promise<T>): Promise<T> {
    try {
      return await read()
    } catch (err) {
      const name = (err as Error).name
      if (name === 'AbortError' || name === 'TimeoutError') throw err
      if (err instanceof PayloadTooLargeError || err instanceof ContentNotFoundError) throw err
      if (err instanceof ConclaveError) {
        this.#logger.warn('content damaged', { cid, problem: err.message })
        throw new ContentMismatchError(`content ${cid}: ${err.message}`, { cause: err })
      }
      if (name === 'NotFoundError' || name === 'BlockNotFoundWhileOfflineError') {
        throw new ContentNotFoundError(`the store does not hold ${cid} (or a block under it)`, { cause: err })
      }
      this.#logger.warn('content damaged', { cid, problem: `${name}: ${(err as Error).message}` })
      throw new ContentMismatchError(`content ${cid} does not decode (${name}): a block is damaged`, { cause: err })
    }
  }
}

/** A walker over a DAG already read and verified: Helia's pins read only each node's CID. */
function listed (dag: readonly CID[]): GraphWalkerFactory {
  return () => ({
    async * walk () {
      for (const cid of dag) yield { block: { cid }, depth: 0, path: [] } as unknown as GraphNode
    }
  }) as ReturnType<GraphWalkerFactory>
}

/**
 * A file blockstore that re-hashes each block it reads (blockstore-fs itself trusts its
 * disk). A block is read whole, in one call: blockstore-fs streams it in 64 KiB pieces
 * that would only be joined again here; one larger than any block the importer writes is
 * refused by its size, unread.
 */
class VerifyingFsBlockstore extends FsBlockstore {
  readonly #sharding = new NextToLast()

  /** Shard folders known to exist: made once, not asked for again with every block. */
  readonly #folders = new Set<string>()
  /** Blocks being written, by path: a file's identical chunks (zeros, say) are written once, not by two writers sharing a temporary name. */
  readonly #writing = new Map<string, Promise<void>>()

  constructor (path: string, init: { createIfMissing?: boolean } = {}) {
    super(path, { ...init, shardingStrategy: new NextToLast() })
  }

  /** Whether the block's file is there, asked without an exception for "no" (a put asks first, for every block; a thrown ENOENT costs ~0.1 ms). */
  override async has (cid: CID): Promise<boolean> {
    const { dir, file } = this.#sharding.encode(cid)
    return existsSync(join(this.path, dir, file))
  }

  /**
   * Written to a temporary name beside it and renamed, as blockstore-fs does (a block file is
   * whole or absent), with the shard folder made once rather than before every block.
   */
  override async put (cid: CID, bytes: Uint8Array, options?: AbortOptions): Promise<CID> {
    const { dir, file } = this.#sharding.encode(cid)
    const path = join(this.path, dir, file)
    options?.signal?.throwIfAborted()
    const running = this.#writing.get(path)
    if (running !== undefined) {
      await running
      return cid
    }
    const write = this.#write(join(this.path, dir), path, join(this.path, dir, `.${file}.tmp`), bytes, options)
    this.#writing.set(path, write)
    try {
      await write
    } finally {
      this.#writing.delete(path)
    }
    return cid
  }

  async #write (folder: string, path: string, temp: string, bytes: Uint8Array, options?: AbortOptions): Promise<void> {
    if (!this.#folders.has(folder)) {
      await mkdir(folder, { recursive: true })
      this.#folders.add(folder)
    }
    try {
      await writeFile(temp, bytes, { signal: options?.signal })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      // The folder went since it was made (removed by hand): made again, once.
      await mkdir(folder, { recursive: true })
      await writeFile(temp, bytes, { signal: options?.signal })
    }
    await rename(temp, path)
  }

  override async * get (cid: CID, options?: AbortOptions): AsyncGenerator<Uint8Array> {
    yield await this.read(cid, options)
  }

  /**
   * The block's bytes, whole, once they hash to its CID. Given `into`, a block of exactly
   * `into.length` bytes is read straight into it and checked there (a file's leaves land in
   * the file's buffer without another copy); `into` then holds unchecked bytes if this
   * throws. A block of any other size is read and returned as without `into`.
   */
  async read (cid: CID, options?: AbortOptions, into?: Uint8Array): Promise<Uint8Array> {
    const { dir, file } = this.#sharding.encode(cid)
    const path = join(this.path, dir, file)
    let bytes: Uint8Array | undefined
    try {
      bytes = (into === undefined ? undefined : await readExactly(path, into, options)) ?? await readBlockFile(path, options)
    } catch (err) {
      const name = (err as Error).name
      // An abort throws its signal's reason, whatever its name (an agent's kill gives an Error).
      if (name === 'AbortError' || name === 'TimeoutError' || options?.signal?.aborted === true) throw err
      throw new ContentNotFoundError(`block ${cid} is not in the store`, { cause: err })
    }
    if (bytes === undefined) throw new ContentMismatchError(`block ${cid} is larger than any block this store writes (${MAX_BLOCK_BYTES} bytes): the store is damaged`)
    if (!blockMatches(cid.multihash, bytes)) throw new ContentMismatchError(`block ${cid} does not hash to its CID: the store is damaged`)
    return bytes
  }
}

/**
 * The file's bytes in `into` when it holds exactly `into.length` of them, undefined when
 * it holds another number: the read asks for one byte more, so a longer file shows.
 */
async function readExactly (path: string, into: Uint8Array, options?: AbortOptions): Promise<Uint8Array | undefined> {
  options?.signal?.throwIfAborted()
  const file = await open(path, 'r')
  try {
    const { bytesRead } = await file.readv([into, new Uint8Array(1)], 0)
    options?.signal?.throwIfAborted()
    return bytesRead === into.length ? into : undefined
  } finally {
    await file.close()
  }
}

/** The audit's blockstore: verified reads of existing files; opening creates nothing and writes are refused. */
class ReadOnlyBlockstore extends VerifyingFsBlockstore {
  constructor (path: string) {
    super(path, { createIfMissing: false })
  }

  override async open (): Promise<void> {}

  override async put (): Promise<never> {
    throw new ConfigError('this store was opened read-only')
  }

  override async delete (): Promise<never> {
    throw new ConfigError('this store was opened read-only')
  }
}
