import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeUpdate, encodeUpdate, topkCount } from '../../src/ml/compression.ts'
import { compressWithFeedback } from '../../src/ml/error-feedback.ts'
import { encodeRawSafetensors, type RawTensor } from '../../src/ml/safetensors.ts'
import { applyDelta, toSafetensors, type Weights } from '../../src/ml/weights.ts'
import type { Compression } from '../../src/core/terms.ts'

const w = (kernel: number[], bias: number[]): Weights => new Map([
  ['b', { shape: [bias.length], data: Float32Array.from(bias) }],
  ['k', { shape: [2, 3], data: Float32Array.from(kernel) }]
])
const INT8: Compression = { kind: 'int8' }
const TOPK: Compression = { kind: 'topk', fraction: 0.34 }
const invalid = expect.objectContaining({ name: 'InvalidWeightsError', code: 'ERR_INVALID_WEIGHTS' })

/** A topk update for `w`'s layout written by hand: what a hostile proposer can publish. */
function handTopk (k: { indices: number[], values: number[] }, b = { indices: [0], values: [0.5] }, fraction = '0.34'): Uint8Array {
  const raw = new Map<string, RawTensor>()
  const put = (name: string, part: { indices: number[], values: number[] }): void => {
    raw.set(`${name}#indices`, { dtype: 'I32', shape: [part.indices.length], bytes: new Uint8Array(Int32Array.from(part.indices).buffer) })
    raw.set(`${name}#values`, { dtype: 'F32', shape: [part.values.length], bytes: new Uint8Array(Float32Array.from(part.values).buffer) })
  }
  put('b', b)
  put('k', k)
  return encodeRawSafetensors(raw, { compression: 'topk', fraction })
}

describe('update compression', () => {
  const update = w([0.1, -0.9, 0.3, 0.05, -0.2, 0.6], [0.01, -0.02])

  it('none is the safetensors bytes of Δw, as before compression existed', () => {
    expect(encodeUpdate(update, { kind: 'none' })).toEqual(toSafetensors(update))
    expect(decodeUpdate(encodeUpdate(update, { kind: 'none' }), { kind: 'none' }, update)).toEqual(update)
  })

  it('int8 keeps each value within half a level (max |v| / 254) of the original, and the bytes are about a quarter', () => {
    const decoded = decodeUpdate(encodeUpdate(update, INT8), INT8, update)
    for (const [name, t] of update) {
      const max = Math.max(...t.data.map(Math.abs))
      const got = decoded.get(name)?.data ?? new Float32Array()
      t.data.forEach((v, i) => { expect(Math.abs((got[i] as number) - v)).toBeLessThanOrEqual(max / 254 * (1 + 1e-6)) })
    }
    const big: Weights = new Map([['k', { shape: [1000], data: Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i)) }]])
    expect(encodeUpdate(big, INT8).length / toSafetensors(big).length).toBeLessThan(0.3)
  })

  it('topk sends exactly ⌈fraction · n⌉ coordinates per tensor, the largest, and zeroes the rest', () => {
    const decoded = decodeUpdate(encodeUpdate(update, TOPK), TOPK, update)
    expect(topkCount(6, 0.34)).toBe(3)
    expect(topkCount(2, 0.34)).toBe(1)
    expect(decoded).toEqual(w([0, -0.9, 0.3, 0, 0, 0.6], [0, -0.02]))
  })

  it('error feedback keeps exactly what topk did not send, and adds it to the next update', () => {
    const first = compressWithFeedback(update, undefined, TOPK)
    expect(first.residual).toEqual(w([0.1, 0, 0, 0.05, -0.2, 0], [0.01, 0]))
    const next = w([0, 0, 0, 0, 0, 0], [0, 0])
    const second = compressWithFeedback(next, first.residual, TOPK)
    // With nothing new trained, what is owed is what goes out next, largest first.
    expect(second.sent).toEqual(w([0.1, 0, 0, 0.05, -0.2, 0], [0.01, 0]))
    expect(second.residual).toEqual(w([0, 0, 0, 0, 0, 0], [0, 0]))
  })

  it('compresses an update once for the same owed and compression (publish, then geometry), and again for other ones', () => {
    const owed = w([0, 0, 0.3, 0, 0, 0], [0, 0])
    const once = compressWithFeedback(update, owed, TOPK)
    expect(compressWithFeedback(update, owed, { kind: 'topk', fraction: 0.34 })).toBe(once)
    // Another owed (equal values, another object: a residual reloaded after a restart), or another compression: computed, the same values where they agree.
    const reloaded = compressWithFeedback(update, w([0, 0, 0.3, 0, 0, 0], [0, 0]), TOPK)
    expect(reloaded).not.toBe(once)
    expect(reloaded).toEqual(once)
    expect(compressWithFeedback(update, undefined, TOPK).total).toBe(update)
    expect(compressWithFeedback(update, owed, INT8).bytes).toEqual(encodeUpdate(applyDelta(update, owed), INT8))
  })

  it('over rounds, Σ sent + the residual is Σ updates (nothing dropped, only delayed)', () => {
    fc.assert(fc.property(fc.array(fc.array(fc.float({ min: -1, max: 1, noNaN: true }), { minLength: 8, maxLength: 8 }), { minLength: 1, maxLength: 6 }), fc.constantFrom<Compression>(INT8, TOPK), (rounds, compression) => {
      let owed: Weights | undefined
      let sent: Weights = w([0, 0, 0, 0, 0, 0], [0, 0])
      let trained: Weights = sent
      for (const values of rounds) {
        const u = w(values.slice(0, 6), values.slice(6))
        const packed = compressWithFeedback(u, owed, compression)
        owed = packed.residual
        sent = applyDelta(sent, packed.sent)
        trained = applyDelta(trained, u)
      }
      const total = applyDelta(sent, owed as Weights)
      for (const [name, t] of trained) (total.get(name)?.data ?? []).forEach((v, i) => { expect(v).toBeCloseTo(t.data[i] as number, 5) })
    }))
  })

  it('refuses a dense update with NaN or ±Infinity anywhere, written by hand (encodeUpdate would not write it), and names where', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      for (const [tensor, at] of [['b', 1], ['k', 4]] as const) {
        const raw = new Map<string, RawTensor>([...update].map(([name, t]) => {
          const data = t.data.slice()
          if (name === tensor) data[at] = bad
          return [name, { dtype: 'F32', shape: t.shape, bytes: new Uint8Array(data.buffer) }]
        }))
        expect(() => decodeUpdate(encodeRawSafetensors(raw), { kind: 'none' }, update)).toThrow(`tensor "${tensor}" has a non-finite value (${bad}) at index ${at}`)
      }
    }
  })

  it('refuses a topk update that sends a coordinate twice (it would amplify it) or more than k of them', () => {
    // Honest: 3 of k's 6 coordinates, 1 of b's 2.
    expect(decodeUpdate(handTopk({ indices: [0, 2, 5], values: [1, 2, 3] }), TOPK, update).get('k')?.data).toEqual(Float32Array.from([1, 0, 2, 0, 0, 3]))
    expect(() => decodeUpdate(handTopk({ indices: [1, 1, 1], values: [5, 5, 5] }), TOPK, update)).toThrow(invalid)
    expect(() => decodeUpdate(handTopk({ indices: [0, 1, 2, 3], values: [1, 1, 1, 1] }), TOPK, update)).toThrow(invalid)
    expect(() => decodeUpdate(handTopk({ indices: [0, 1], values: [1, 1] }), TOPK, update)).toThrow(invalid)
    expect(() => decodeUpdate(handTopk({ indices: [0, 1, 6], values: [1, 1, 1] }), TOPK, update)).toThrow(invalid)
    expect(() => decodeUpdate(handTopk({ indices: [-1, 1, 2], values: [1, 1, 1] }), TOPK, update)).toThrow(invalid)
    expect(() => decodeUpdate(handTopk({ indices: [2, 1, 0], values: [1, 1, 1] }), TOPK, update)).toThrow(invalid)
    expect(() => decodeUpdate(handTopk({ indices: [0, 1, 2], values: [1, Number.NaN, 1] }), TOPK, update)).toThrow(invalid)
    // Another k than the charter's, a dense update, or another compression.
    expect(() => decodeUpdate(handTopk({ indices: [0, 1, 2], values: [1, 1, 1] }, undefined, '0.5'), TOPK, update)).toThrow(invalid)
    expect(() => decodeUpdate(toSafetensors(update), TOPK, update)).toThrow(invalid)
    expect(() => decodeUpdate(encodeUpdate(update, INT8), TOPK, update)).toThrow(invalid)
    expect(() => decodeUpdate(encodeUpdate(update, TOPK), INT8, update)).toThrow(invalid)
    expect(() => decodeUpdate(encodeUpdate(update, TOPK), { kind: 'none' }, update)).toThrow(invalid)
  })

  it('refuses int8 levels of −128, a non-finite or overflowing scale, and wrong shapes', () => {
    const int8 = (levels: number[], scale: number, shape = [2, 3]): Uint8Array => encodeRawSafetensors(new Map<string, RawTensor>([
      ['b', { dtype: 'I8', shape: [2], bytes: new Uint8Array(Int8Array.from([1, 2]).buffer) }],
      ['b#scale', { dtype: 'F32', shape: [], bytes: new Uint8Array(Float32Array.of(0.1).buffer) }],
      ['k', { dtype: 'I8', shape, bytes: new Uint8Array(Int8Array.from(levels).buffer) }],
      ['k#scale', { dtype: 'F32', shape: [], bytes: new Uint8Array(Float32Array.of(scale).buffer) }]
    ]), { compression: 'int8' })
    expect(decodeUpdate(int8([127, -127, 0, 1, 2, 3], 0.5), INT8, update).get('k')?.data).toEqual(Float32Array.from([63.5, -63.5, 0, 0.5, 1, 1.5]))
    expect(() => decodeUpdate(int8([-128, 0, 0, 0, 0, 0], 0.5), INT8, update)).toThrow(invalid)
    expect(() => decodeUpdate(int8([127, 0, 0, 0, 0, 0], Number.NaN), INT8, update)).toThrow(invalid)
    expect(() => decodeUpdate(int8([127, 0, 0, 0, 0, 0], 3e38), INT8, update)).toThrow(invalid)
    expect(() => decodeUpdate(int8([127, 0, 0, 0, 0, 0], -1), INT8, update)).toThrow(invalid)
    expect(() => decodeUpdate(int8([127, 0, 0, 0, 0, 0], 0.5, [3, 2]), INT8, update)).toThrow(invalid)
  })

  it('decodes any bytes to a finite Δw of the model\'s layout, or refuses them (InvalidWeightsError), never anything else', () => {
    const compressions = fc.constantFrom<Compression>({ kind: 'none' }, INT8, TOPK)
    const honest = fc.tuple(fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 6, maxLength: 6 }), fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 2, maxLength: 2 }), compressions)
      .map(([k, b, c]) => ({ bytes: encodeUpdate(w(k, b), c), compression: c }))
    // Honest bytes with some bytes overwritten, or random bytes.
    const mangled = fc.tuple(honest, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }))
      .map(([{ bytes, compression }, edits]) => {
        const out = bytes.slice()
        for (const [at, v] of edits) out[at % out.length] = v
        return { bytes: out, compression }
      })
    const random = fc.tuple(fc.uint8Array({ maxLength: 256 }), compressions).map(([bytes, compression]) => ({ bytes, compression }))
    fc.assert(fc.property(fc.oneof(mangled, random), ({ bytes, compression }) => {
      let decoded: Weights
      try {
        decoded = decodeUpdate(bytes, compression, update)
      } catch (err) {
        expect(err).toEqual(invalid)
        return
      }
      expect([...decoded.keys()]).toEqual(['b', 'k'])
      for (const [name, t] of decoded) {
        expect(t.shape).toEqual(update.get(name)?.shape)
        expect(t.data.every(Number.isFinite)).toBe(true)
      }
    }), { numRuns: 2000 })
  })
})
