import { z } from 'zod'
import { InvalidWeightsError } from '../core/errors.ts'

/**
 * The safetensors format (huggingface/safetensors): an 8-byte little-endian header length,
 * a JSON header naming each tensor's dtype, shape and byte range, then the raw data.
 * We write F32 weights (and I8, I32 in compressed updates), tensors sorted by name and the header space-padded to 8 bytes, so
 * the same weights always give the same bytes (and hash), and PyTorch/HF tools read them.
 */
export interface Tensor {
  shape: number[]
  data: Float32Array
}

/** Named tensors in name order: a model's weights, or a delta between two of them. */
export type Weights = Map<string, Tensor>

const MAX_HEADER_BYTES = 100 * 1024 * 1024
const DTYPE_BYTES = { F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4, I64: 8, I8: 1, U8: 1, BOOL: 1 } as const

const TensorInfo = z.object({
  dtype: z.enum(Object.keys(DTYPE_BYTES) as [keyof typeof DTYPE_BYTES]),
  shape: z.array(z.number().int().nonnegative()).max(8),
  data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()])
}).strict()
const Header = z.record(z.string(), z.unknown())
const Metadata = z.record(z.string(), z.string())
const WRITTEN: ReadonlySet<string> = new Set<Dtype>(['F32', 'I8', 'I32'])

/** The dtypes Conclave writes: F32 weights, and the I8 and I32 parts of a compressed update. */
export type Dtype = 'F32' | 'I8' | 'I32'

/** One tensor as stored: its dtype, shape and little-endian bytes. */
export interface RawTensor {
  dtype: Dtype
  shape: number[]
  bytes: Uint8Array
}

export function encodeSafetensors (weights: Weights, metadata: Record<string, string> = {}): Uint8Array {
  const raw = new Map<string, RawTensor>()
  // Float32Array is platform-endian; every platform Node runs on is little-endian, as the format requires.
  for (const [name, t] of weights) raw.set(name, { dtype: 'F32', shape: t.shape, bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })
  return encodeRawSafetensors(raw, metadata)
}

/** Any of Conclave's dtypes, tensors sorted by name: the same tensors always give the same bytes. */
export function encodeRawSafetensors (tensors: ReadonlyMap<string, RawTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const names = [...tensors.keys()].sort()
  const header: Record<string, unknown> = {}
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata
  let offset = 0
  for (const name of names) {
    const t = tensors.get(name) as RawTensor
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.byteLength] }
    offset += t.bytes.byteLength
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  // Pad by bytes, not UTF-16 units: a non-ASCII tensor name takes several bytes.
  const headerBytes = new Uint8Array(json.length + (8 - (json.length % 8)) % 8).fill(0x20)
  headerBytes.set(json)
  const out = new Uint8Array(8 + headerBytes.length + offset)
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true)
  out.set(headerBytes, 8)
  let at = 8 + headerBytes.length
  for (const name of names) {
    const t = tensors.get(name) as RawTensor
    out.set(t.bytes, at)
    at += t.bytes.byteLength
  }
  return out
}

export interface DecodeOptions {
  /** Refuse files larger than this. @default 256 MiB */
  maxBytes?: number
}

/** Decodes and validates a safetensors file into F32 weights; every inconsistency is an InvalidWeightsError. */
export function decodeSafetensors (bytes: Uint8Array, options: DecodeOptions = {}): Weights {
  const weights: Weights = new Map()
  for (const [name, t] of decodeRawSafetensors(bytes, options).tensors) {
    if (t.dtype !== 'F32') throw new InvalidWeightsError(`tensor "${name}" is ${t.dtype}; Conclave exchanges F32 weights`)
    weights.set(name, { shape: t.shape, data: new Float32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 4) })
  }
  return weights
}

/**
 * Decodes and validates a safetensors file's layout: its metadata and its tensors in name
 * order, each in bytes of its own (aligned for a typed array over them). Only the dtypes
 * Conclave writes are accepted; every inconsistency is an InvalidWeightsError.
 */
export function decodeRawSafetensors (bytes: Uint8Array, options: DecodeOptions = {}): { metadata: Record<string, string>, tensors: Map<string, RawTensor> } {
  const maxBytes = options.maxBytes ?? 256 * 1024 * 1024
  if (bytes.length > maxBytes) throw new InvalidWeightsError(`safetensors file of ${bytes.length} bytes exceeds ${maxBytes}`)
  if (bytes.length < 8) throw new InvalidWeightsError('safetensors file shorter than its 8-byte header length')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const headerLength = Number(view.getBigUint64(0, true))
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.length) throw new InvalidWeightsError(`safetensors header length ${headerLength} does not fit the file`)
  let header: Record<string, unknown>
  let json: string
  try {
    json = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength))
    header = Header.parse(JSON.parse(json))
  } catch (err) {
    throw new InvalidWeightsError('safetensors header is not a JSON object', { cause: err })
  }
  // JSON.parse keeps a repeated key's last value and other readers its first: one file would be two models.
  const repeated = repeatedKey(json)
  if (repeated !== undefined) throw new InvalidWeightsError(`safetensors header names "${repeated.slice(0, 80)}" twice in one object`)
  const metadata = Metadata.safeParse(header.__metadata__ ?? {})
  if (!metadata.success) throw new InvalidWeightsError('safetensors __metadata__ is not a map of strings')
  const dataStart = 8 + headerLength
  const dataLength = bytes.length - dataStart
  const entries = Object.entries(header).filter(([name]) => name !== '__metadata__')
    .map(([name, raw]) => {
      const info = TensorInfo.safeParse(raw)
      if (!info.success) throw new InvalidWeightsError(`tensor "${name}" has a malformed header entry`)
      return { name, ...info.data }
    })
    .sort((a, b) => a.data_offsets[0] - b.data_offsets[0])
  let expected = 0
  const tensors = new Map<string, RawTensor>()
  for (const e of entries) {
    const [begin, end] = e.data_offsets
    const elements = e.shape.reduce((n, d) => n * d, 1)
    if (begin !== expected || end < begin || end > dataLength) throw new InvalidWeightsError(`tensor "${e.name}" has offsets [${begin}, ${end}] that are not contiguous and in bounds`)
    if (end - begin !== elements * DTYPE_BYTES[e.dtype]) throw new InvalidWeightsError(`tensor "${e.name}" has ${end - begin} bytes for shape [${e.shape.join(', ')}] of ${e.dtype}`)
    if (!WRITTEN.has(e.dtype)) throw new InvalidWeightsError(`tensor "${e.name}" is ${e.dtype}; Conclave exchanges ${[...WRITTEN].join(', ')} tensors`)
    tensors.set(e.name, { dtype: e.dtype as Dtype, shape: e.shape, bytes: bytes.slice(dataStart + begin, dataStart + end) })
    expected = end
  }
  if (expected !== dataLength) throw new InvalidWeightsError(`safetensors data has ${dataLength - expected} trailing bytes no tensor claims`)
  return { metadata: metadata.data, tensors: new Map([...tensors].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) }
}

/**
 * A key some object of `json` (text JSON.parse has accepted) holds twice, compared as the
 * strings they decode to ("a" and "\\u0061" are one key); undefined when there is none.
 */
function repeatedKey (json: string): string | undefined {
  // One set of keys per open object; undefined for an open array.
  const open: Array<Set<string> | undefined> = []
  for (let i = 0; i < json.length; i++) {
    const c = json[i]
    if (c === '{') open.push(new Set())
    else if (c === '[') open.push(undefined)
    else if (c === '}' || c === ']') open.pop()
    else if (c === '"') {
      let end = i + 1
      while (json[end] !== '"') end += json[end] === '\\' ? 2 : 1
      let next = end + 1
      while (json[next] === ' ' || json[next] === '\t' || json[next] === '\n' || json[next] === '\r') next++
      const keys = open.at(-1)
      if (json[next] === ':' && keys !== undefined) {
        const key = JSON.parse(json.slice(i, end + 1)) as string
        if (keys.has(key)) return key
        keys.add(key)
      }
      i = end
    }
  }
  return undefined
}
