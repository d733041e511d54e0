import { decodeUpdate, encodeUpdate } from './compression.ts'
import { applyDelta, delta, type Weights } from './weights.ts'
import type { Compression } from '../core/terms.ts'

/** An update as it travels under a compression, and what the sender keeps for next time. */
export interface Compressed {
  /** The bytes published. */
  bytes: Uint8Array
  /** The Δw every peer decodes from them. */
  sent: Weights
  /** What was compressed: the update plus what was owed. */
  total: Weights
  /** What was trained (plus what was owed) but not sent; absent when nothing is lost (`none`). */
  residual?: Weights
}

/**
 * Compression with error feedback (Stich et al. 2018, Karimireddy et al. 2019): the member
 * adds what it did not send last time to its update, sends the compressed sum, and keeps
 * the rest. Over rounds everything trained is sent, only later: Σ sent + residual = Σ updates.
 * `sent` is decoded from the published bytes, as every peer decodes it.
 */
export function compressWithFeedback (update: Weights, owed: Weights | undefined, compression: Compression): Compressed {
  if (compression.kind === 'none') return { bytes: encodeUpdate(update, compression), sent: update, total: update }
  const known = made.get(update)
  if (known !== undefined && known.owed === owed && JSON.stringify(known.compression) === JSON.stringify(compression)) return known.compressed
  const total = owed === undefined ? update : applyDelta(update, owed)
  const bytes = encodeUpdate(total, compression)
  const sent = decodeUpdate(bytes, compression, total)
  const compressed = { bytes, sent, total, residual: delta(total, sent) }
  made.set(update, { owed, compression, compressed })
  return compressed
}

/**
 * Lossy compressions made, by the update (updates and what is owed are never changed in
 * place): a member compresses its own update to publish it and again to compare peers'
 * updates with it as sent; the second is the first. Weak: kept only while the update is.
 */
const made = new WeakMap<Weights, { owed: Weights | undefined, compression: Compression, compressed: Compressed }>()
