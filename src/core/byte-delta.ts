import { z } from 'zod'

/** A piece of a value: a range `[from, to)` of the base it changes, or bytes of its own. */
export const DeltaPart = z.union([z.tuple([z.int().nonnegative(), z.int().nonnegative()]), z.custom<Uint8Array>(value => value instanceof Uint8Array, 'expected bytes')])
export type DeltaPart = z.infer<typeof DeltaPart>

/** Bytes a probe must match to count as the base's kept middle: short ones match by chance. */
const PROBE = 64

/**
 * `next` as pieces of `base` and the bytes between them, for the two ways a serialised value
 * usually changes: an edit between a kept start and end (items appended to a list), and a
 * window that let go of its first items and took new ones (a conversation trimmed to its
 * last messages), which keeps a middle of the base. Whichever needs fewer new bytes.
 */
export function encodeDelta (base: Uint8Array, next: Uint8Array): DeltaPart[] {
  const { head, tail } = sharedEnds(base, next)
  const edit: DeltaPart[] = [[0, head], next.subarray(head, next.length - tail), [base.length - tail, base.length]]
  const probe = next.subarray(head, head + PROBE)
  const at = probe.length === PROBE ? Buffer.from(base.buffer, base.byteOffset, base.length).indexOf(probe, head + 1) : -1
  if (at < 0) return compact(edit)
  let kept = PROBE
  while (head + kept < next.length && at + kept < base.length && next[head + kept] === base[at + kept]) kept++
  const rest = sharedEnds(base.subarray(at + kept), next.subarray(head + kept))
  const window: DeltaPart[] = [[0, head], [at, at + kept], next.subarray(head + kept, next.length - rest.tail), [base.length - rest.tail, base.length]]
  return compact(inserted(window) < inserted(edit) ? window : edit)
}

/** The value `parts` describe; throws where a range lies outside the base. */
export function decodeDelta (base: Uint8Array, parts: readonly DeltaPart[]): Uint8Array {
  const pieces = parts.map(part => {
    if (part instanceof Uint8Array) return part
    const [from, to] = part
    if (from > to || to > base.length) throw new RangeError(`it keeps bytes ${from} to ${to} of a ${base.length}-byte value`)
    return base.subarray(from, to)
  })
  // A plain Uint8Array, not a Buffer: JSON.stringify writes a Buffer as its toJSON, not as bytes.
  const value = new Uint8Array(pieces.reduce((n, piece) => n + piece.length, 0))
  let offset = 0
  for (const piece of pieces) {
    value.set(piece, offset)
    offset += piece.length
  }
  return value
}

/** New bytes a delta carries. */
export const inserted = (parts: readonly DeltaPart[]): number => parts.reduce((n, part) => n + (part instanceof Uint8Array ? part.length : 0), 0)

/** How many bytes two values share at their start and, not overlapping that, at their end. */
function sharedEnds (a: Uint8Array, b: Uint8Array): { head: number, tail: number } {
  const most = Math.min(a.length, b.length)
  let head = 0
  while (head < most && a[head] === b[head]) head++
  let tail = 0
  while (tail < most - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++
  return { head, tail }
}

const compact = (parts: DeltaPart[]): DeltaPart[] => parts.filter(part => part instanceof Uint8Array ? part.length > 0 : part[0] < part[1])
