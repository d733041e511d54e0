import { InvalidWeightsError } from '../core/errors.ts'
import type { Compression } from '../core/terms.ts'
import { decodeRawSafetensors, encodeRawSafetensors, type DecodeOptions, type RawTensor, type Weights } from './safetensors.ts'
import { assertFinite, assertFiniteValues, toSafetensors, type Layout } from './weights.ts'

export const NO_COMPRESSION: Compression = { kind: 'none' }

const SCALE = '#scale'
const INDICES = '#indices'
const VALUES = '#values'
/** Largest int8 level: symmetric, so −128 is never written. */
const LEVELS = 127
/** Largest scale whose every level is a finite float32. */
const MAX_SCALE = 3.4028234663852886e38 / LEVELS

/** Coordinates topk sends of a tensor of `n`: ⌈fraction · n⌉, at least one of a non-empty tensor. */
export function topkCount (n: number, fraction: number): number {
  return n === 0 ? 0 : Math.min(n, Math.max(1, Math.ceil(fraction * n)))
}

/** The bytes an update travels as. `none` gives the safetensors bytes of Δw exactly, as before compression existed. */
export function encodeUpdate (update: Weights, compression: Compression): Uint8Array {
  assertFinite(update)
  if (compression.kind === 'none') return toSafetensors(update)
  const raw = new Map<string, RawTensor>()
  for (const [name, t] of update) {
    if (compression.kind === 'int8') {
      const { q, scale } = quantize(t.data)
      raw.set(name, { dtype: 'I8', shape: t.shape, bytes: new Uint8Array(q.buffer) })
      raw.set(name + SCALE, { dtype: 'F32', shape: [], bytes: new Uint8Array(Float32Array.of(scale).buffer) })
    } else {
      const { indices, values } = largest(t.data, topkCount(t.data.length, compression.fraction))
      raw.set(name + INDICES, { dtype: 'I32', shape: [indices.length], bytes: new Uint8Array(indices.buffer) })
      raw.set(name + VALUES, { dtype: 'F32', shape: [values.length], bytes: new Uint8Array(values.buffer) })
    }
  }
  return encodeRawSafetensors(raw, metadataOf(compression))
}

/**
 * The Δw that `bytes` carry under `compression`, for a model of `layout`: exactly the
 * tensors, dtypes and shapes the compression writes, finite values, and for topk exactly
 * ⌈fraction · n⌉ strictly increasing in-range indices per tensor (so no coordinate is sent
 * twice to be amplified). Anything else is an InvalidWeightsError.
 */
export function decodeUpdate (bytes: Uint8Array, compression: Compression, layout: Layout, options: DecodeOptions = {}): Weights {
  const { metadata, tensors } = decodeRawSafetensors(bytes, options)
  const expected = metadataOf(compression)
  if (JSON.stringify(metadata) !== JSON.stringify(expected)) {
    throw new InvalidWeightsError(`update says it is compressed as ${JSON.stringify(metadata)}; the charter's compression is ${JSON.stringify(expected)}`)
  }
  const parts = compression.kind === 'none' ? [''] : compression.kind === 'int8' ? ['', SCALE] : [INDICES, VALUES]
  if (tensors.size !== layout.size * parts.length) throw new InvalidWeightsError(`update has ${tensors.size} tensors; ${compression.kind} of this model has ${layout.size * parts.length}`)
  const out: Weights = new Map()
  for (const [name, { shape }] of layout) {
    const n = shape.reduce((a, d) => a * d, 1)
    const [first, second] = parts.map(part => tensors.get(name + part))
    if (first === undefined || (parts.length === 2 && second === undefined)) throw new InvalidWeightsError(`update lacks tensor "${name}" of the model (${compression.kind})`)
    const data = compression.kind === 'none'
      ? dense(name, first, shape)
      : compression.kind === 'int8'
        ? dequantize(name, first, second as RawTensor, shape)
        : scatter(name, first, second as RawTensor, n, topkCount(n, compression.fraction))
    out.set(name, { shape: [...shape], data })
  }
  // Dense values are checked here, whole, so the merge that reads them again knows them finite (the other forms are by construction).
  if (compression.kind === 'none') assertFinite(out)
  return out
}

function metadataOf (compression: Compression): Record<string, string> {
  if (compression.kind === 'none') return {}
  return compression.kind === 'int8' ? { compression: 'int8' } : { compression: 'topk', fraction: String(compression.fraction) }
}

function assertShape (name: string, t: RawTensor, dtype: RawTensor['dtype'], shape: readonly number[]): void {
  if (t.dtype !== dtype || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new InvalidWeightsError(`tensor "${name}" is ${t.dtype} [${t.shape.join(', ')}]; expected ${dtype} [${shape.join(', ')}]`)
  }
}

function dense (name: string, t: RawTensor, shape: readonly number[]): Float32Array {
  assertShape(name, t, 'F32', shape)
  return new Float32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 4)
}

function quantize (data: Float32Array): { q: Int8Array, scale: number } {
  let max = 0
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i] as number)
    if (a > max) max = a
  }
  const scale = Math.fround(max / LEVELS)
  const q = new Int8Array(data.length)
  if (scale === 0) return { q, scale }
  for (let i = 0; i < data.length; i++) q[i] = Math.max(-LEVELS, Math.min(LEVELS, Math.round((data[i] as number) / scale)))
  return { q, scale }
}

function dequantize (name: string, levels: RawTensor, scaleTensor: RawTensor, shape: readonly number[]): Float32Array {
  assertShape(name, levels, 'I8', shape)
  assertShape(name + SCALE, scaleTensor, 'F32', [])
  const scale = new Float32Array(scaleTensor.bytes.buffer, scaleTensor.bytes.byteOffset, 1)[0] as number
  // A scale beyond MAX_SCALE would turn the top levels into Infinity.
  if (!(scale >= 0 && scale <= MAX_SCALE)) throw new InvalidWeightsError(`tensor "${name}" has int8 scale ${scale}; expected a finite scale in [0, ${MAX_SCALE}]`)
  const q = new Int8Array(levels.bytes.buffer, levels.bytes.byteOffset, levels.bytes.byteLength)
  const out = new Float32Array(q.length)
  for (let i = 0; i < q.length; i++) {
    const v = q[i] as number
    if (v < -LEVELS) throw new InvalidWeightsError(`tensor "${name}" has int8 level ${v} at ${i}; symmetric int8 stays within ±${LEVELS}`)
    out[i] = v * scale
  }
  return out
}

/** The k largest-magnitude coordinates, ties to the lower index, in index order. */
function largest (data: Float32Array, k: number): { indices: Int32Array, values: Float32Array } {
  const indices = new Int32Array(k)
  const values = new Float32Array(k)
  if (k === 0) return { indices, values }
  const magnitudes = new Float32Array(data.length)
  for (let i = 0; i < data.length; i++) magnitudes[i] = Math.abs(data[i] as number)
  const threshold = magnitudes.slice().sort()[data.length - k] as number
  let above = 0
  for (let i = 0; i < data.length; i++) if ((magnitudes[i] as number) > threshold) above++
  // All coordinates above the threshold, then the first ones at it until k are taken.
  let ties = k - above
  let j = 0
  for (let i = 0; i < data.length && j < k; i++) {
    const m = magnitudes[i] as number
    if (m > threshold || (m === threshold && ties-- > 0)) {
      indices[j] = i
      values[j++] = data[i] as number
    }
  }
  return { indices, values }
}

function scatter (name: string, indexTensor: RawTensor, valueTensor: RawTensor, n: number, k: number): Float32Array {
  assertShape(name + INDICES, indexTensor, 'I32', [k])
  assertShape(name + VALUES, valueTensor, 'F32', [k])
  const indices = new Int32Array(indexTensor.bytes.buffer, indexTensor.bytes.byteOffset, k)
  const values = new Float32Array(valueTensor.bytes.buffer, valueTensor.bytes.byteOffset, k)
  assertFiniteValues(name + VALUES, values)
  const out = new Float32Array(n)
  let previous = -1
  for (let j = 0; j < k; j++) {
    const i = indices[j] as number
    // Strictly increasing from 0 to n − 1: in range, and no coordinate twice.
    if (i <= previous || i >= n) throw new InvalidWeightsError(`tensor "${name}" has topk index ${i} at ${j}; indices must increase strictly within [0, ${n})`)
    out[i] = values[j] as number
    previous = i
  }
  return out
}
