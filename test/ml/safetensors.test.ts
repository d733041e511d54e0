import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { decodeSafetensors, encodeSafetensors } from '../../src/ml/safetensors.ts'
import { fromSafetensors, toSafetensors, type Weights } from '../../src/ml/weights.ts'

const fixture = new URL('../fixtures/python-weights.safetensors', import.meta.url)
// The same tensors make-fixtures.py wrote with the Python safetensors library.
const expected: Weights = new Map([
  ['dense0.bias', { shape: [4], data: Float32Array.from([-1.5, 0, 2.25, 1e-8]) }],
  ['dense0.kernel', { shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i / 8) }]
])

function header (bytes: Uint8Array): Record<string, unknown> {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true))
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>
}

function withHeader (bytes: Uint8Array, change: (h: Record<string, unknown>) => void): Uint8Array {
  const h = header(bytes)
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true))
  change(h)
  const json = new TextEncoder().encode(JSON.stringify(h))
  const out = new Uint8Array(8 + json.length + bytes.length - 8 - n)
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true)
  out.set(json, 8)
  out.set(bytes.subarray(8 + n), 8 + json.length)
  return out
}

describe('safetensors', () => {
  it('reads a file written by the Python safetensors library', async () => {
    expect(decodeSafetensors(new Uint8Array(await readFile(fixture)))).toEqual(expected)
  })

  it('writes the same bytes as the Python library for the same tensors and metadata', async () => {
    expect(encodeSafetensors(expected, { format: 'pt' })).toEqual(new Uint8Array(await readFile(fixture)))
  })

  it('round-trips, deterministically, whatever order the tensors were inserted in', () => {
    const reversed: Weights = new Map([...expected].reverse())
    const bytes = toSafetensors(reversed)
    expect(toSafetensors(expected)).toEqual(bytes)
    expect(fromSafetensors(bytes)).toEqual(expected)
    expect((8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))) % 8).toBe(0)
  })

  it('pads the header to 8 bytes by bytes, also for non-ASCII tensor names', () => {
    const named: Weights = new Map([['λ.é', { shape: [1], data: Float32Array.from([3]) }]])
    const bytes = toSafetensors(named)
    expect((8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))) % 8).toBe(0)
    expect(fromSafetensors(bytes)).toEqual(named)
  })

  it.each([
    ['truncated file', (b: Uint8Array) => b.subarray(0, b.length - 3)],
    ['shorter than its length field', () => new Uint8Array(5)],
    ['header length past the end', (b: Uint8Array) => { const c = Uint8Array.from(b); new DataView(c.buffer).setBigUint64(0, 10n ** 9n, true); return c }],
    ['header that is not JSON', (b: Uint8Array) => { const c = Uint8Array.from(b); c[9] = 0x7b; c[10] = 0x7b; return c }],
    ['offsets out of bounds', (b: Uint8Array) => withHeader(b, h => { (h['dense0.kernel'] as { data_offsets: number[] }).data_offsets = [16, 9999] })],
    ['overlapping offsets', (b: Uint8Array) => withHeader(b, h => { (h['dense0.kernel'] as { data_offsets: number[] }).data_offsets = [8, 56] })],
    ['shape that does not match the bytes', (b: Uint8Array) => withHeader(b, h => { (h['dense0.kernel'] as { shape: number[] }).shape = [4, 4] })],
    ['unknown dtype', (b: Uint8Array) => withHeader(b, h => { (h['dense0.bias'] as { dtype: string }).dtype = 'Q4' })],
    ['a dtype other than F32', (b: Uint8Array) => withHeader(b, h => { (h['dense0.bias'] as { dtype: string, shape: number[] }).dtype = 'I32' })],
    ['trailing bytes', (b: Uint8Array) => Uint8Array.from([...b, 0, 0, 0, 0])]
  ])('refuses a %s with InvalidWeightsError', (_, damage) => {
    expect(() => decodeSafetensors(damage(toSafetensors(expected)))).toThrow(expect.objectContaining({ name: 'InvalidWeightsError' }))
  })

  it.each([
    ['tensor name', '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'],
    ['tensor name spelt with an escape', '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\\u0061":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'],
    ['field of a tensor', '{"a":{"dtype":"F32","shape":[1],"shape":[2],"data_offsets":[0,8]}}'],
    ['__metadata__ key', '{"__metadata__":{"format":"pt","format":"tf"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}']
  ])('refuses a header naming a %s twice (JSON.parse keeps the last, another reader the first) with InvalidWeightsError', (_, json) => {
    const header = new TextEncoder().encode(json)
    const bytes = new Uint8Array(8 + header.length + 8)
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true)
    bytes.set(header, 8)
    bytes.set(new Uint8Array(Float32Array.from([1, 2]).buffer), 8 + header.length)
    expect(() => decodeSafetensors(bytes)).toThrow(expect.objectContaining({ name: 'InvalidWeightsError', message: expect.stringMatching(/twice/) }))
  })

  it('refuses an oversized file and NaN or infinite weights with InvalidWeightsError', () => {
    const bytes = toSafetensors(expected)
    expect(() => fromSafetensors(bytes, { maxBytes: 16 })).toThrow(expect.objectContaining({ name: 'InvalidWeightsError' }))
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const poisoned: Weights = new Map([['w', { shape: [2], data: Float32Array.from([1, bad]) }]])
      expect(() => fromSafetensors(toSafetensors(poisoned))).toThrow(expect.objectContaining({ name: 'InvalidWeightsError' }))
    }
  })
})
