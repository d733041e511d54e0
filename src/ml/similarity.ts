import { UnmeasurableUpdateError } from '../core/errors.ts'
import type { Weights } from './weights.ts'

/** Length of an update's count sketch (a power of two: a bucket is the hash's low bits): cosines from sketches are within ~1/√SKETCH of the exact ones. */
export const SKETCH_SIZE = 4096

/** Sums of squares already taken, by the weights they were taken of (weights are never changed in place). */
const squares = new WeakMap<Weights, number>()

/** Σ v² over all values, tensor by tensor in the map's order (the same float order everywhere). */
function sumOfSquares (w: Weights): number {
  const known = squares.get(w)
  if (known !== undefined) return known
  let sum = 0
  for (const t of w.values()) sum = addSquares(sum, t.data)
  squares.set(w, sum)
  return sum
}

/*
 * The loops over a tensor's values are functions of their own, called once per tensor with
 * the running sum: V8 optimises a small function whole after a call or two, where a loop
 * nested in a loop over tensors is entered on-stack and deoptimised each time it exits
 * (a cold cosine took 3–4 ms for its first few calls, then 0.4–0.6; its leaf, 0.4–0.6 from
 * the second). Passing the running sum in keeps the floats added in the same order.
 */

function addSquares (sum: number, data: Float32Array): number {
  for (let i = 0; i < data.length; i++) sum += (data[i] as number) * (data[i] as number)
  return sum
}

function addDot (dot: number, u: Float32Array, v: Float32Array): number {
  for (let i = 0; i < u.length; i++) dot += (u[i] as number) * (v[i] as number)
  return dot
}

/** Euclidean norm of all values, tensor by tensor in name order (the same float order everywhere). */
export function l2Norm (w: Weights): number {
  return Math.sqrt(sumOfSquares(w))
}

interface Sums { dot: number, na: number, nb: number }

/** Adds u·v, u·u and v·v into `acc` (summed in locals: V8 keeps them in registers, a third of the time of adding into the object). */
function accumulate (u: Float32Array, v: Float32Array, acc: Sums): Sums {
  let { dot, na, nb } = acc
  for (let i = 0; i < u.length; i++) {
    const x = u[i] as number
    const y = v[i] as number
    dot += x * y
    na += x * x
    nb += y * y
  }
  acc.dot = dot
  acc.na = na
  acc.nb = nb
  return acc
}

const ratio = ({ dot, na, nb }: Sums): number => na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb)

/** cos of two vectors of the same length; 0 when either is all zeros. */
export function vectorCosine (a: Float32Array, b: Float32Array): number {
  return ratio(accumulate(a, b, { dot: 0, na: 0, nb: 0 }))
}

/**
 * cos(a, b) over all tensors; 0 when either is all zeros. Both must have the same tensors
 * (assertCompatible first). Only the dot product is summed here: each side's sum of squares
 * is taken once per update (a judge takes the norms anyway), the same floats as summing all
 * three together where both hold their tensors in the same order, as every update of a model does.
 */
export function cosine (a: Weights, b: Weights): number {
  let dot = 0
  for (const [name, t] of a) dot = addDot(dot, t.data, (b.get(name) as { data: Float32Array }).data)
  return ratio({ dot, na: sumOfSquares(a), nb: sumOfSquares(b) })
}

/**
 * cos(a, b) on the coordinates where `a` is not zero: how a sparse update (topk) agrees with
 * a dense one where it chose to send. Over all coordinates two top-k updates share few, and
 * honest ones look unrelated (cosine 0.005–0.03 from round 5, classify dev, topk 0.1).
 */
export function supportCosine (a: Weights, b: Weights): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (const [name, t] of a) {
    const u = t.data
    const v = (b.get(name) as { data: Float32Array }).data
    for (let i = 0; i < u.length; i++) {
      const x = u[i] as number
      if (x === 0) continue
      const y = v[i] as number
      dot += x * y
      na += x * x
      nb += y * y
    }
  }
  return ratio({ dot, na, nb })
}

/** Sketches already taken, by the update they were taken of: in-process members share a decoded update, and its sketch with it. Null where none can be taken. */
const sketches = new WeakMap<Weights, Float32Array | null>()

/**
 * A count sketch of an update (each value added, with a hashed sign, into one of
 * SKETCH_SIZE hashed buckets): inner products survive in expectation, so a peer can keep
 * every update it has seen at 16 KiB each and still tell a re-sent one from a new one.
 * Taken once per update object (updates are never changed in place); callers only read it.
 * Throws UnmeasurableUpdateError for an update no sketch can be taken of (`sketchable`).
 */
export function sketch (w: Weights): Float32Array {
  const taken = sketchOnce(w)
  if (taken === null) throw new UnmeasurableUpdateError('the count sketch of this update overflows float32: its finite values sum past 3.4e38 in a bucket')
  return taken
}

/**
 * Whether an update's sketch can be taken. Finite values can still sum past float32's range
 * in a bucket (an update of 3e38s): a bucket at ±Infinity makes every cosine with the sketch
 * NaN, which no vote can sign, so whoever kept it could measure no later update (found red-teaming).
 */
export const sketchable = (w: Weights): boolean => sketchOnce(w) !== null

function sketchOnce (w: Weights): Float32Array | null {
  const known = sketches.get(w)
  if (known !== undefined) return known
  const out = new Float32Array(SKETCH_SIZE)
  let salt = 0
  for (const t of w.values()) {
    salt = (salt + 0x9e3779b9) >>> 0
    addToSketch(out, salt, t.data)
  }
  const taken = out.every(Number.isFinite) ? out : null
  sketches.set(w, taken)
  return taken
}

function addToSketch (out: Float32Array, salt: number, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) {
    const h = Math.imul((i ^ salt) >>> 0, 0x85ebca6b) ^ Math.imul(i >>> 16, 0xc2b2ae35)
    const mixed = (h ^ (h >>> 13)) >>> 0
    const bucket = mixed & (SKETCH_SIZE - 1)
    out[bucket] = (out[bucket] as number) + ((mixed & 0x80000000) === 0 ? 1 : -1) * (data[i] as number)
  }
}

/** cos of two sketches (0 when either is all zeros). */
export const sketchCosine = vectorCosine

/** Σ v² of a sketch, summed in the order sketchCosine sums it: kept beside a sketch, each later cosine with it is one pass (knownSketchCosine). */
export const sketchSquares = (s: Float32Array): number => addSquares(0, s)

/**
 * sketchCosine(a, b) from each side's sketchSquares, bit for bit: sketchCosine sums u·v, u·u
 * and v·v side by side, each in index order, as this sums u·v alone and sketchSquares each
 * side alone. One pass over the sketches instead of three sums.
 */
export function knownSketchCosine (a: Float32Array, aSquares: number, b: Float32Array, bSquares: number): number {
  return ratio({ dot: addDot(0, a, b), na: aSquares, nb: bSquares })
}

/**
 * The sketch of several updates' mean: the mean of their sketches, a count sketch being
 * linear. Summed in doubles in the order given, so whoever sums the same sketches in the same
 * order (every voter, in the ledger's order) gets the same bits.
 */
export function meanSketch (sketches: readonly Float32Array[]): Float32Array {
  if (sketches.length === 0) throw new RangeError('the mean of no sketches')
  const sum = new Float64Array(SKETCH_SIZE)
  for (const s of sketches) for (let i = 0; i < SKETCH_SIZE; i++) sum[i] = (sum[i] as number) + (s[i] as number)
  return Float32Array.from(sum, v => v / sketches.length)
}
