import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { aggregate } from '../../src/ml/aggregate/index.ts'
import { applyDelta, assertCompatible, assertFinite, delta, weightsSha256, type Weights } from '../../src/ml/weights.ts'

const w = (kernel: number[], bias: number[]): Weights => new Map([
  ['b', { shape: [bias.length], data: Float32Array.from(bias) }],
  ['k', { shape: [2, 2], data: Float32Array.from(kernel) }]
])

describe('weights', () => {
  it('computes Δw = next − prev and applies it back', () => {
    const prev = w([1, 2, 3, 4], [0.5])
    const next = w([1.5, 2, 2, 8], [0])
    const d = delta(next, prev)
    expect(d).toEqual(w([0.5, 0, -1, 4], [-0.5]))
    expect(applyDelta(prev, d)).toEqual(next)
    expect(applyDelta(prev, d, 0.5)).toEqual(w([1.25, 2, 2.5, 6], [0.25]))
  })

  it('refuses different tensor names or shapes, and non-finite values (InvalidWeightsError)', () => {
    const a = w([1, 2, 3, 4], [0])
    expect(() => assertCompatible(a, new Map([['k', { shape: [4], data: new Float32Array(4) }], ['b', { shape: [1], data: new Float32Array(1) }]]))).toThrow(expect.objectContaining({ name: 'InvalidWeightsError' }))
    expect(() => assertCompatible(a, new Map([['k', { shape: [2, 2], data: new Float32Array(4) }]]))).toThrow(expect.objectContaining({ name: 'InvalidWeightsError' }))
    expect(() => delta(a, w([1, 2, 3, 4], [0, 1]))).toThrow(expect.objectContaining({ name: 'InvalidWeightsError' }))
    expect(() => assertFinite(w([1, Number.NaN, 3, 4], [0]))).toThrow(expect.objectContaining({ name: 'InvalidWeightsError' }))
  })

  it('computes in Float32 exactly as the element-wise definition, and finds any NaN or ±Infinity wherever it is', () => {
    const values = fc.float32Array({ minLength: 1, maxLength: 64 })
    fc.assert(fc.property(values, values, fc.float({ noNaN: true, noDefaultInfinity: true }), (a, b, scale) => {
      const n = Math.min(a.length, b.length)
      const one = (x: Float32Array): Weights => new Map([['t', { shape: [n], data: x.slice(0, n) }]])
      const d = delta(one(a), one(b)).get('t')?.data as Float32Array
      const applied = applyDelta(one(a), one(b), scale).get('t')?.data as Float32Array
      expect(d).toEqual(a.slice(0, n).map((v, i) => v - (b[i] as number)))
      expect(applied).toEqual(a.slice(0, n).map((v, i) => v + scale * (b[i] as number)))
      const finite = Array.from(a.slice(0, n)).every(Number.isFinite)
      if (finite) expect(() => assertFinite(one(a))).not.toThrow()
      else expect(() => assertFinite(one(a))).toThrow(expect.objectContaining({ name: 'InvalidWeightsError' }))
    }), { seed: 17, numRuns: 2000 })
  })

  it('fuzz: one NaN or ±Infinity anywhere among finite values of any size is refused, by the index of the first', () => {
    const finite = fc.float32Array({ noNaN: true, noDefaultInfinity: true, minLength: 1, maxLength: 300, size: 'max' })
    fc.assert(fc.property(finite, fc.nat(), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY), fc.constantFrom(0, 1, 2), (values, at, bad, count) => {
      const data = values.slice()
      const first = at % data.length
      for (let k = 0; k < count; k++) data[Math.min(data.length - 1, first + k * 7)] = bad
      const one: Weights = new Map([['t', { shape: [data.length], data }]])
      if (count === 0) expect(() => assertFinite(one)).not.toThrow()
      else expect(() => assertFinite(one)).toThrow(`has a non-finite value (${bad}) at index ${first}`)
    }), { seed: 23, numRuns: 3000 })
  })

  it('hashes the safetensors encoding: equal weights, equal hash', () => {
    expect(weightsSha256(w([1, 2, 3, 4], [0]))).toBe(weightsSha256(new Map([...w([1, 2, 3, 4], [0])].reverse())))
    expect(weightsSha256(w([1, 2, 3, 4], [0]))).not.toBe(weightsSha256(w([1, 2, 3, 4.0001], [0])))
  })
})

describe('FedAvg', () => {
  it('is the sample-weighted mean of the deltas (checked by hand)', () => {
    const merged = aggregate([
      { delta: w([1, 0, 0, 0], [3]), numSamples: 1 },
      { delta: w([0, 4, 0, 0], [0]), numSamples: 3 }
    ], { rule: 'fedavg' })
    // (1·1 + 3·0)/4, (1·0 + 3·4)/4, 0, 0 ; bias (1·3 + 0)/4
    expect(merged).toEqual(w([0.25, 3, 0, 0], [0.75]))
  })

  it('of one update is that update, and refuses zero samples or nothing at all', () => {
    const only = w([1, 2, 3, 4], [5])
    expect(aggregate([{ delta: only, numSamples: 7 }], { rule: 'fedavg' })).toEqual(only)
    expect(() => aggregate([], { rule: 'fedavg' })).toThrow(expect.objectContaining({ name: 'InvalidWeightsError' }))
  })
})
