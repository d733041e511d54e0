import { importer } from 'ipfs-unixfs-importer'
import { create, type KuboRPCClient } from 'kubo-rpc-client'
import { BackendUnavailableError, ConclaveError, ContentMismatchError, ContentNotFoundError, PayloadTooLargeError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { AbortOptions } from '../core/options.ts'
import type { ContentStore, GetOptions } from './index.ts'
import { CHUNK_BYTES, DEFAULT_MAX_BYTES, importerOptions, parseCid } from './unixfs-settings.ts'

export interface KuboStoreOptions {
  /** kubo's RPC API, e.g. http://127.0.0.1:5001 */
  url: string
  /** How long a lookup may take before the content counts as missing. @default 5000 */
  timeoutMs?: number
  logger?: Logger
}

/**
 * The real IPFS engine: a kubo daemon over its RPC API. Adds use the same chunking as
 * Helia (CIDv1, raw leaves, 256 KiB), and since `cat` returns bytes only, `get`
 * re-chunks what it received and checks that it rebuilds the requested CID.
 */
export function createKuboStore (options: KuboStoreOptions): ContentStore {
  const client = create({ url: options.url })
  const timeout = options.timeoutMs ?? 5000
  const call = async <T>(what: string, cid: string, fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> => {
    signal?.throwIfAborted()
    const limit = AbortSignal.any([AbortSignal.timeout(timeout), ...(signal === undefined ? [] : [signal])])
    try {
      return await fn(limit)
    } catch (err) {
      signal?.throwIfAborted()
      if (err instanceof ConclaveError) throw err
      if (isUnreachable(err)) throw new BackendUnavailableError(`kubo is not reachable at ${options.url}: start it with \`npm run services:up\``, { cause: err })
      if (limit.aborted || /not found|no link/i.test((err as Error).message)) throw new ContentNotFoundError(`kubo does not have ${cid} (${what})`, { cause: err })
      throw err
    }
  }
  return new KuboStore(client, call)
}

type Call = <T>(what: string, cid: string, fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal) => Promise<T>

class KuboStore implements ContentStore {
  readonly #client: KuboRPCClient
  readonly #call: Call

  constructor (client: KuboRPCClient, call: Call) {
    this.#client = client
    this.#call = call
  }

  async put (bytes: Uint8Array, options: AbortOptions = {}): Promise<string> {
    const added = await this.#call('add', '', signal => this.#client.add(bytes, { cidVersion: 1, rawLeaves: true, chunker: `size-${CHUNK_BYTES}`, pin: false, signal }), options.signal)
    return added.cid.toString()
  }

  async get (text: string, options: GetOptions = {}): Promise<Uint8Array> {
    const cid = parseCid(text)
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
    const stat = await this.#call('stat', text, signal => this.#client.files.stat(`/ipfs/${text}`, { signal, offline: true } as object), options.signal)
    const size = Number(stat.size)
    if (size > maxBytes) throw new PayloadTooLargeError(`content ${text} has ${size} bytes, over the ${maxBytes}-byte limit`)
    const bytes = await this.#call('cat', text, async signal => {
      const chunks: Uint8Array[] = []
      let total = 0
      for await (const chunk of this.#client.cat(cid, { signal, offline: true } as object)) {
        total += chunk.length
        if (total > maxBytes) throw new PayloadTooLargeError(`content ${text} exceeds the ${maxBytes}-byte limit`)
        chunks.push(chunk)
      }
      return Buffer.concat(chunks)
    }, options.signal)
    const rebuilt = await rootCid(bytes)
    if (rebuilt !== cid.toString()) throw new ContentMismatchError(`kubo returned bytes for ${text} that rebuild ${rebuilt}`)
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  async has (text: string, options: AbortOptions = {}): Promise<boolean> {
    const cid = parseCid(text)
    try {
      await this.#call('block stat', text, signal => this.#client.block.stat(cid, { signal, offline: true } as object), options.signal)
      return true
    } catch (err) {
      if (err instanceof ContentNotFoundError) return false
      throw err
    }
  }

  async pin (text: string, options: AbortOptions = {}): Promise<void> {
    const cid = parseCid(text)
    await this.#call('pin', text, signal => this.#client.pin.add(cid, { signal }), options.signal)
  }

  async isPinned (text: string, options: AbortOptions = {}): Promise<boolean> {
    const cid = parseCid(text)
    try {
      for await (const _ of this.#client.pin.ls({ paths: [cid], signal: options.signal })) return true
      return false
    } catch (err) {
      if (isUnreachable(err)) throw new BackendUnavailableError('kubo is not reachable', { cause: err })
      return false
    }
  }

  async close (): Promise<void> {}
}

/** The CID these bytes get under the store's chunking, computed without storing anything. */
async function rootCid (bytes: Uint8Array): Promise<string> {
  const sink = { put: async (cid: unknown) => cid }
  let root = ''
  for await (const entry of importer([{ content: bytes }], sink as never, importerOptions)) root = entry.cid.toString()
  return root
}

function isUnreachable (err: unknown): boolean {
  const cause = (err as { cause?: { code?: string } }).cause
  return err instanceof TypeError && (cause?.code === 'ECONNREFUSED' || /fetch failed/.test(err.message))
}
