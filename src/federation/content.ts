import { createHash } from 'node:crypto'
import { ContentMismatchError } from '../core/errors.ts'
import type { AbortOptions } from '../core/options.ts'
import type { ModelRef } from '../core/records.ts'
import { decodeUpdate, NO_COMPRESSION } from '../ml/compression.ts'
import { fromSafetensors, toSafetensors, type Layout, type Weights } from '../ml/weights.ts'
import type { ContentStore } from '../storage/index.ts'
import { contentCid } from '../storage/unixfs-settings.ts'
import type { Compression } from '../core/terms.ts'

/** Largest model or delta a participant will fetch from a peer. */
export const MAX_MODEL_BYTES = 64 * 1024 * 1024

export function sha256Hex (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Stores weights as safetensors, pinned, and returns the reference records carry. */
export async function putModel (store: ContentStore, weights: Weights, options: AbortOptions = {}): Promise<ModelRef> {
  return putBytes(store, toSafetensors(weights), options)
}

/** The reference `putModel` would give these weights, computed without a store (the audit writes nothing). */
export async function modelRef (weights: Weights): Promise<ModelRef> {
  const bytes = toSafetensors(weights)
  return { cid: await contentCid(bytes), sha256: sha256Hex(bytes) }
}

/** Stores bytes (a model, or an update as the charter's compression encodes it), pinned, and returns the reference records carry. */
export async function putBytes (store: ContentStore, bytes: Uint8Array, options: AbortOptions = {}): Promise<ModelRef> {
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
  assertSha256(bytes, ref)
  return fromSafetensors(bytes, { maxBytes: MAX_MODEL_BYTES })
}

/** How a proposal's Δw is read: by the charter's compression, for the model it applies to. */
export interface UpdateFormat {
  /** @default none */
  compression?: Compression
  /** The tensor names and shapes of the federation's model. */
  layout: Layout
}

/** Fetches the Δw a proposal points to, checks it against the record's sha-256 and decodes it by the charter's compression. */
export async function fetchUpdate (store: ContentStore, ref: ModelRef, format: UpdateFormat, options: AbortOptions = {}): Promise<Weights> {
  return decodeUpdateBytes(await store.get(ref.cid, { ...options, maxBytes: MAX_MODEL_BYTES }), ref, format)
}

/** Checks an update's bytes against the record's sha-256, then decodes them: anything but the charter's compression of this model is an InvalidWeightsError. */
export function decodeUpdateBytes (bytes: Uint8Array, ref: ModelRef, format: UpdateFormat): Weights {
  assertSha256(bytes, ref)
  return decodeUpdate(bytes, format.compression ?? NO_COMPRESSION, format.layout, { maxBytes: MAX_MODEL_BYTES })
}

function assertSha256 (bytes: Uint8Array, ref: ModelRef): void {
  const actual = sha256Hex(bytes)
  if (actual !== ref.sha256) {
    throw new ContentMismatchError(`content ${ref.cid} has sha-256 ${actual}, the record says ${ref.sha256}`)
  }
}
