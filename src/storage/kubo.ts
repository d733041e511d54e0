import { importer } from 'ipfs-unixfs-importer'
import { create, type KuboRPCClient } from 'kubo-rpc-client'
import type { CID } from 'multiformats/cid'
import { BackendUnavailableError, ConclaveError, ConfigError, ContentMismatchError, ContentNotFoundError, InvalidRecordError, PayloadTooLargeError } from '../core/errors.ts'
import { readStreamCapped } from '../core/files.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import type { AbortOptions } from '../core/options.ts'
import type { ContentStore, GetOptions } from './index.ts'
import { CHUNK_BYTES, DEFAULT_MAX_BYTES, importerOptions, parseCid } from './unixfs-settings.ts'

export interface KuboStoreOptions {
  /** kubo's RPC API, e.g. http://127.0.0.1:5001 */
  url: string
  /**
   * How long one RPC call may take before the daemon counts as unavailable. `has`, `pin`
   * and `isPinned` ask the node alone (`offline`: "not found" at once); `get` asks the
   * node's peers for content the node lacks, as a member fetches another machine's Δw, and
   * content no peer provides gets no answer within it. @default 30000
   */
  timeoutMs?: number
  /** @default silentLogger */
  logger?: Logger
}

/**
 * The real IPFS engine: a kubo daemon over its RPC API. `put` adds with the same chunking
 * as Helia (CIDv1, raw leaves, 256 KiB, balanced) and checks that kubo's CID is the one
 * computed locally (a daemon whose Import.* config changes the DAG layout is refused).
 * `cat` returns bytes only, so `get` re-chunks them in memory and checks that they
 * rebuild the requested CID: content added to kubo with other settings does not verify.
 */
export function createKuboStore (options: KuboStoreOptions): ContentStore {
  let url: URL
  try {
    url = new URL(options.url)
  } catch (err) {
    throw new ConfigError(`kubo url "${options.url}" is not a URL`, { cause: err })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`kubo url "${options.url}" is not http(s)`)
  const timeoutMs = options.timeoutMs ?? 30_000
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new ConfigError(`kubo timeoutMs must be a positive number, not ${timeoutMs}`)
  return new KuboStore(create({ url: options.url }), options.url, timeoutMs, options.logger ?? silentLogger)
}

class KuboStore implements ContentStore {
  readonly #client: KuboRPCClient
  readonly #url: string
  readonly #timeoutMs: number
  readonly #logger: Logger

  constructor (client: KuboRPCClient, url: string, timeoutMs: number, logger: Logger) {
    this.#client = client
    this.#url = url
    this.#timeoutMs = timeoutMs
    this.#logger = logger
  }

  async put (bytes: Uint8Array, options: AbortOptions = {}): Promise<string> {
    if (!(bytes instanceof Uint8Array)) throw new InvalidRecordError('put takes a Uint8Array')
    const added = await this.#call('add', undefined, signal => this.#client.add(bytes, { cidVersion: 1, rawLeaves: true, chunker: `size-${CHUNK_BYTES}`, pin: false, signal }), options.signal)
    const expected = await rootCid(bytes)
    if (added.cid.toString() !== expected) {
      throw new ContentMismatchError(`kubo at ${this.#url} stored the bytes as ${added.cid}, not ${expected}: check its Import.* settings`)
    }
    return expected
  }

  async get (text: string, options: GetOptions = {}): Promise<Uint8Array> {
    const cid = parseCid(text)
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
    // Content my node holds answers at once; what it lacks it asks its peers for (an offline daemon says "not found" at once).
    const stat = await this.#call('files/stat', cid, signal => this.#client.files.stat(`/ipfs/${cid}`, { signal }), options.signal)
    const size = Number(stat.size)
    if (size > maxBytes) throw new PayloadTooLargeError(`content ${text} has ${size} bytes, over the ${maxBytes}-byte limit`)
    const bytes = await this.#call('cat', cid, async signal => readStreamCapped(this.#client.cat(cid, { signal } as AbortOptions), maxBytes, `content ${text}`), options.signal)
    const rebuilt = await rootCid(bytes)
    if (rebuilt !== cid.toString()) {
      this.#logger.warn('content damaged', { cid: text, rebuilt })
      throw new ContentMismatchError(`kubo returned bytes for ${text} that rebuild ${rebuilt}`)
    }
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  async has (text: string, options: AbortOptions = {}): Promise<boolean> {
    const cid = parseCid(text)
    try {
      await this.#call('block/stat', cid, signal => this.#client.block.stat(cid, { signal, offline: true } as AbortOptions), options.signal)
      return true
    } catch (err) {
      if (err instanceof ContentNotFoundError) return false
      throw err
    }
  }

  async pin (text: string, options: AbortOptions = {}): Promise<void> {
    const cid = parseCid(text)
    await this.#call('pin/add', cid, signal => this.#client.pin.add(cid, { signal, offline: true } as AbortOptions), options.signal)
  }

  async isPinned (text: string, options: AbortOptions = {}): Promise<boolean> {
    const cid = parseCid(text)
    return this.#call('pin/ls', cid, async (signal) => {
      try {
        for await (const _ of this.#client.pin.ls({ paths: [cid], signal, offline: true } as AbortOptions)) return true
        return false
      } catch (err) {
        if (/not pinned|not found/i.test((err as Error).message) && !isUnreachable(err)) return false
        throw err
      }
    }, options.signal)
  }

  async close (): Promise<void> {}

  /** One RPC call under the store's timeout and the caller's signal, its failures mapped to the store's named errors. */
  async #call<T> (command: string, cid: CID | undefined, fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted()
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    try {
      return await fn(signal === undefined ? timeout : AbortSignal.any([timeout, signal]))
    } catch (err) {
      signal?.throwIfAborted()
      if (err instanceof ConclaveError) throw err
      if (timeout.aborted) throw this.#unavailable(`gave no answer to ${command} within ${this.#timeoutMs} ms`, err)
      if (isUnreachable(err)) throw this.#unavailable('is not reachable', err)
      if (cid !== undefined && /not found|no link named/i.test((err as Error).message)) {
        throw new ContentNotFoundError(`kubo at ${this.#url} does not hold ${cid} (${command})`, { cause: err })
      }
      throw err
    }
  }

  #unavailable (what: string, cause: unknown): BackendUnavailableError {
    return new BackendUnavailableError(`kubo at ${this.#url} ${what}: start one with \`npm run services:up\``, { cause })
  }
}

/** The CID these bytes get under the store's chunking, computed in memory without storing anything. */
async function rootCid (bytes: Uint8Array): Promise<string> {
  const discard = { put: async (cid: CID) => cid }
  let root = ''
  for await (const entry of importer([{ content: bytes }], discard, importerOptions)) root = entry.cid.toString()
  return root
}

/** What fetch throws when nothing answers at the URL (connection refused, reset, no route, DNS). */
function isUnreachable (err: unknown): boolean {
  return err instanceof TypeError && /fetch failed/i.test(err.message)
}
