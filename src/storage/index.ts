import { z } from 'zod'
import type { Logger } from '../core/logger.ts'
import type { AbortOptions } from '../core/options.ts'
import type { Cid } from '../core/records.ts'
import { ServiceUrl } from '../core/secret.ts'

export interface GetOptions extends AbortOptions {
  /** Refuse content larger than this many bytes (PayloadTooLargeError). @default 64 MiB */
  maxBytes?: number
}

/**
 * Content-addressed storage for model weights, deltas and teacher answers.
 *
 * `put` chunks bytes into a UnixFS DAG exactly like `ipfs add --cid-version 1`
 * (raw leaves, 256 KiB chunks, balanced layout), so Helia and kubo give the same CID for
 * the same bytes. `get` verifies that what it returns hashes to the CID
 * (ContentMismatchError otherwise) and throws ContentNotFoundError for unknown CIDs.
 */
export interface ContentStore {
  put(bytes: Uint8Array, options?: AbortOptions): Promise<Cid>
  get(cid: Cid, options?: GetOptions): Promise<Uint8Array>
  has(cid: Cid, options?: AbortOptions): Promise<boolean>
  /** Keeps the content (and every block under it) from garbage collection. */
  pin(cid: Cid, options?: AbortOptions): Promise<void>
  isPinned(cid: Cid, options?: AbortOptions): Promise<boolean>
  close(): Promise<void>
}

export const StoreConfig = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('helia') }).strict(),
  z.object({
    kind: z.literal('kubo'),
    /** kubo's RPC API. @default http://127.0.0.1:5001 */
    url: ServiceUrl.default('http://127.0.0.1:5001')
  }).strict()
])
export type StoreConfig = z.infer<typeof StoreConfig>

export interface CreateStoreOptions {
  /** Where an embedded store keeps its blocks (the run's `store/`). */
  dir: string
  logger?: Logger
}

/** The only place a store backend is constructed; call sites pick one by config. */
export async function createContentStore (config: StoreConfig, options: CreateStoreOptions): Promise<ContentStore> {
  switch (config.kind) {
    case 'helia': return (await import('./helia.ts')).createHeliaStore({ dir: options.dir, logger: options.logger })
    case 'kubo': return (await import('./kubo.ts')).createKuboStore({ url: config.url, logger: options.logger })
  }
}
