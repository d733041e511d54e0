import { createHash } from 'node:crypto'
import { ContentMismatchError } from '../core/errors.ts'
import type { AbortOptions } from '../core/options.ts'
import type { ModelRef } from '../core/records.ts'
import { fromSafetensors, toSafetensors, type Weights } from '../ml/weights.ts'
import type { ContentStore } from '../storage/index.ts'

/** Largest model or delta a participant will fetch from a peer. */
export const MAX_MODEL_BYTES = 64 * 1024 * 1024

export function sha256Hex (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Stores weights as safetensors, pinned, and returns the reference records carry. */
export async function putModel (store: ContentStore, weights: Weights, options: AbortOptions = {}): Promise<ModelRef> {
  const bytes = toSafetensors(weights)
  const cid = await store.put(bytes, options)
  await store.pin(cid, options)
  return { cid, sha256: sha256Hex(bytes) }
}

/**
 * Fetches weights a record points to. The store checks the bytes against the CID; this
 * checks them against the record's sha-256 and decodes them (NaN, shapes, size).
 */
export async function fetchModel (store: ContentStore, ref: ModelRef, options: AbortOptions = {}): Promise<Weights> {
  return decodeModel(await store.get(ref.cid, { ...options, maxBytes: MAX_MODEL_BYTES }), ref)
}

/** Checks bytes the store vouched for against the record's sha-256, then decodes them. */
export function decodeModel (bytes: Uint8Array, ref: ModelRef): Weights {
  const actual = sha256Hex(bytes)
  if (actual !== ref.sha256) {
    throw new ContentMismatchError(`content ${ref.cid} has sha-256 ${actual}, the record says ${ref.sha256}`)
  }
  return fromSafetensors(bytes, { maxBytes: MAX_MODEL_BYTES })
}
