import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { cosine, l2Norm, sketch, sketchable } from '../../src/ml/similarity.ts'
import type { Weights } from '../../src/ml/weights.ts'

/** Two updates of one model: the same tensor names, in the same order, the same sizes. */
const pair = fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 4 }).chain(sizes => {
  const tensor = (n: number) => fc.float32Array({ minLength: n, maxLength: n, noNaN: true, noDefaultInfinity: true, min: -1e3, max: 1e3 })
  const weights = fc.tuple(...sizes.map(tensor)).map(ts => new Map(ts.map((data, i) => [`t${i}`, { shape: [data.length], data }])) as Weights)
  return fc.tuple(weights, weights)
})

/** cos as it was summed before the sums of squares were kept per update: all three sums together, element by element. */
function together (a: Weights, b: Weights): number {
  let dot = 0; let na = 0; let nb = 0
  for (const [name, t] of a) {
    const v = (b.get(name) as { data: Float32Array }).data
    t.data.forEach((x, i) => { const y = v[i] as number; dot += x * y; na += x * x; nb += y * y })
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb)
}

describe('cosine and norm of updates', () => {
  it('give the same floats as summing dot product and both squares together, whichever is asked first', () => {
    fc.assert(fc.property(pair, fc.boolean(), ([a, b], normsFirst) => {
      const expected = together(a, b)
      if (normsFirst) { l2Norm(a); l2Norm(b) }
      expect(Object.is(cosine(a, b), expected)).toBe(true)
      let sum = 0
      for (const t of a.values()) t.data.forEach(x => { sum += x * x })
      expect(l2Norm(a)).toBe(Math.sqrt(sum))
    }), { seed: 51, numRuns: 1000 })
  })
})

describe('the count sketch of an update', () => {
  const filled = (n: number, fill: (i: number) => number): Weights => new Map([['dense/kernel', { shape: [n], data: Float32Array.from({ length: n }, (_, i) => fill(i)) }]])

  it('cannot be taken of an update whose finite values sum past float32 in a bucket: UnmeasurableUpdateError, as a judge would have to sign a NaN cosine with it', () => {
    // Every value finite, as decodeUpdate asks; 16 to a bucket, each 3e38 (float32 ends at 3.4e38).
    const huge = filled(65536, () => 3e38)
    expect(sketchable(huge)).toBe(false)
    expect(() => sketch(huge)).toThrow(expect.objectContaining({ name: 'UnmeasurableUpdateError', code: 'ERR_UNMEASURABLE_UPDATE' }))
    const honest = filled(65536, i => Math.sin(i) * 0.01)
    expect(sketchable(honest)).toBe(true)
    expect(sketch(honest).every(Number.isFinite)).toBe(true)
  })
})
