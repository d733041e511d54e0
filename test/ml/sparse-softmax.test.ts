import * as tf from '@tensorflow/tfjs'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import type { SparseVector } from '../../src/data/features.ts'
import { initBackend } from '../../src/ml/backend.ts'
import { initSoftmax, predictSoftmax, softmaxLayout, softmaxLogits, softmaxLogLikelihood, softmaxLogProbs, meanEntropyOf, meanKlOf, type SoftmaxShape } from '../../src/ml/sparse-softmax.ts'
import { applyDelta, ShiftedTensor, shiftedModel, weightsSha256, type Weights } from '../../src/ml/weights.ts'

/** The model's forward pass as dense backend ops on densified rows: what scoring computed before it ran in plain Float32. */
function denseLogits (shape: SoftmaxShape, w: Weights, rows: readonly SparseVector[]): Float32Array {
  return tf.tidy(() => {
    const x = new Float32Array(rows.length * shape.features)
    rows.forEach((row, r) => row.indices.forEach((f, k) => { x[r * shape.features + f] = (x[r * shape.features + f] as number) + (row.values[k] as number) }))
    const param = (name: string): tf.Tensor => tf.tensor((w.get(name) as { data: Float32Array }).data, (w.get(name) as { shape: number[] }).shape)
    let h = tf.add(tf.matMul(tf.tensor2d(x, [rows.length, shape.features]), param('dense0.kernel') as tf.Tensor2D), param('dense0.bias'))
    if (shape.hidden > 0) h = tf.add(tf.matMul(tf.relu(h) as tf.Tensor2D, param('dense1.kernel') as tf.Tensor2D), param('dense1.bias'))
    return h.dataSync() as Float32Array
  })
}

const rowsOf = (features: number) => fc.array(fc.array(fc.tuple(fc.nat(features - 1), fc.float({ min: -2, max: 2, noNaN: true })), { maxLength: 12 }).map(pairs => ({
  indices: Int32Array.from(pairs.map(([f]) => f)),
  values: Float32Array.from(pairs.map(([, v]) => v))
})), { minLength: 1, maxLength: 6 })

describe('scoring in plain Float32 (softmaxLogits)', () => {
  beforeAll(async () => { await initBackend() })

  it('gives the dense forward pass\'s logits, repeated features summed, with and without a hidden layer', () => {
    fc.assert(fc.property(fc.constantFrom(0, 5), fc.nat(1000), rowsOf(40), (hidden, seed, rows) => {
      const shape = { features: 40, hidden, classes: 4 }
      const w = initSoftmax(shape, seed)
      const ours = softmaxLogits(shape, w, rows)
      const theirs = denseLogits(shape, w, rows)
      expect(ours.length).toBe(rows.length * 4)
      ours.forEach((v, i) => { expect(Math.abs(v - (theirs[i] as number))).toBeLessThan(1e-4) })
    }), { numRuns: 200, seed: 11 })
  })

  it('picks the argmax and the label\'s log-softmax from those logits', () => {
    const shape = { features: 30, hidden: 4, classes: 3 }
    const w = initSoftmax(shape, 3)
    const rows: SparseVector[] = [{ indices: Int32Array.of(1, 7, 29), values: Float32Array.of(1, -0.5, 2) }, { indices: Int32Array.of(), values: Float32Array.of() }]
    const logits = softmaxLogits(shape, w, rows)
    const logp = softmaxLogProbs(shape, w, rows, [2, 0])
    rows.forEach((_, r) => {
      const z = [...logits.slice(r * 3, r * 3 + 3)]
      expect(predictSoftmax(shape, w, rows)[r]).toBe(z.indexOf(Math.max(...z)))
      const label = r === 0 ? 2 : 0
      expect(logp[r]).toBeCloseTo((z[label] as number) - Math.log(z.reduce((s, v) => s + Math.exp(v), 0)), 6)
    })
  })

  it('refuses a feature or label outside the model, and weights of the wrong size', () => {
    const shape = { features: 10, hidden: 0, classes: 2 }
    const w = initSoftmax(shape, 1)
    expect(() => softmaxLogits(shape, w, [{ indices: Int32Array.of(10), values: Float32Array.of(1) }])).toThrow(/feature 10 is outside/)
    expect(() => softmaxLogProbs(shape, w, [{ indices: Int32Array.of(1), values: Float32Array.of(1) }], [2])).toThrow(/label 2 is outside/)
    // A label missing or one too many: never a mean over fewer rows, or a NaN from reading past them.
    expect(() => softmaxLogProbs(shape, w, [{ indices: Int32Array.of(1), values: Float32Array.of(1) }], [])).toThrow(/0 labels for 1 rows/)
    expect(() => softmaxLogProbs(shape, w, [{ indices: Int32Array.of(1), values: Float32Array.of(1) }], [0, 1])).toThrow(/2 labels for 1 rows/)
    expect(() => softmaxLogLikelihood(shape, w, [{ indices: Int32Array.of(1), values: Float32Array.of(1) }], [])).toThrow(/0 labels for 1 rows/)
    expect(softmaxLogLikelihood(shape, w, [], [])).toBe(0)
    const short = new Map(w)
    short.set('dense0.kernel', { shape: [5, 2], data: new Float32Array(10) })
    expect(() => softmaxLogits(shape, short, [])).toThrow(/has 10 values, not the 20/)
  })
})

describe('how unsure a model is (meanEntropyOf its logits)', () => {
  it('is the mean of −Σ p log p over the rows\' predicted distributions: log C for a model that cannot tell the classes apart', () => {
    fc.assert(fc.property(fc.constantFrom(0, 3), fc.nat(1000), rowsOf(40), (hidden, seed, rows) => {
      const shape = { features: 40, hidden, classes: 4 }
      const w = initSoftmax(shape, seed)
      const logits = softmaxLogits(shape, w, rows)
      const entropies = rows.map((_, r) => {
        const z = Array.from(logits.subarray(r * 4, r * 4 + 4))
        const total = z.reduce((a, v) => a + Math.exp(v), 0)
        return -z.reduce((a, v) => a + (Math.exp(v) / total) * Math.log(Math.exp(v) / total), 0)
      })
      expect(meanEntropyOf(logits, 4)).toBeCloseTo(entropies.reduce((a, b) => a + b, 0) / rows.length, 9)
      const zero = new Map([...w].map(([name, t]) => [name, { shape: t.shape, data: new Float32Array(t.data.length) }]))
      expect(meanEntropyOf(softmaxLogits(shape, zero, rows), 4)).toBeCloseTo(Math.log(4), 12)
    }), { numRuns: 200, seed: 13 })
    expect(meanEntropyOf(new Float32Array(0), 2)).toBe(0)
  })
})

describe('how far predictions move (meanKlOf two models\' logits)', () => {
  it('is the mean of Σ p log(p / q) over the rows, p the moved model\'s distribution: 0 between a model and itself, never negative', () => {
    fc.assert(fc.property(fc.constantFrom(0, 3), fc.nat(1000), rowsOf(40), (hidden, seed, rows) => {
      const shape = { features: 40, hidden, classes: 4 }
      const from = softmaxLogits(shape, initSoftmax(shape, seed), rows)
      const to = softmaxLogits(shape, initSoftmax(shape, seed + 1), rows)
      const probs = (z: Float32Array, r: number): number[] => {
        const row = Array.from(z.subarray(r * 4, r * 4 + 4))
        const total = row.reduce((a, v) => a + Math.exp(v), 0)
        return row.map(v => Math.exp(v) / total)
      }
      const kls = rows.map((_, r) => { const p = probs(to, r); const q = probs(from, r); return p.reduce((a, pc, c) => a + pc * Math.log(pc / (q[c] as number)), 0) })
      expect(meanKlOf(to, from, 4)).toBeCloseTo(kls.reduce((a, b) => a + b, 0) / rows.length, 9)
      expect(meanKlOf(to, from, 4)).toBeGreaterThanOrEqual(0)
      expect(meanKlOf(from, from, 4)).toBe(0)
      // Logits shifted by a constant per row give the same distributions.
      expect(meanKlOf(from.map((v, i) => v + Math.floor(i / 4)), from, 4)).toBeCloseTo(0, 5)
    }), { numRuns: 200, seed: 14 })
    expect(meanKlOf(new Float32Array(0), new Float32Array(0), 2)).toBe(0)
    expect(() => meanKlOf(new Float32Array(4), new Float32Array(2), 2)).toThrow(RangeError)
  })
})

describe('a shifted model (base + scale · Δ computed where read)', () => {
  it('scores as the applied model does, bit for bit, chained as the marginal rule chains them, without computing the whole kernel', () => {
    fc.assert(fc.property(fc.constantFrom(0, 3), fc.nat(1000), fc.double({ min: -2, max: 2, noNaN: true }), rowsOf(40), (hidden, seed, scale, rows) => {
      const shape = { features: 40, hidden, classes: 4 }
      const base = initSoftmax(shape, seed)
      const d1 = initSoftmax(shape, seed + 1)
      const d2 = initSoftmax(shape, seed + 2)
      const applied = applyDelta(applyDelta(base, d1, scale), d2, scale)
      const shifted = shiftedModel(shiftedModel(base, d1, scale), d2, scale)
      expect([...softmaxLogits(shape, shifted, rows)]).toEqual([...softmaxLogits(shape, applied, rows)])
      expect(weightsSha256(shifted)).toBe(weightsSha256(applied))
    }), { numRuns: 100, seed: 12 })
  })

  it('reads only the kernel rows the examples hit, each once however many examples hit it, until someone asks for every value', () => {
    const shape = { features: 1000, hidden: 0, classes: 2 }
    const base = initSoftmax(shape, 1)
    const kernel = shiftedModel(base, base, 0.5).get('dense0.kernel') as ShiftedTensor
    const reads: number[] = []
    const read = kernel.read.bind(kernel)
    kernel.read = (at, n, out) => { reads.push(at); read(at, n, out) }
    softmaxLogits(shape, new Map([...shiftedModel(base, base, 0.5)].map(([name, t]) => [name, name === 'dense0.kernel' ? kernel : t])), [{ indices: Int32Array.of(999, 3), values: Float32Array.of(1, 1) }, { indices: Int32Array.of(3, 999, 3), values: Float32Array.of(2, 1, 1) }])
    expect(reads).toEqual([6, 1998])
    expect(kernel.data[1998]).toBe(Math.fround((base.get('dense0.kernel')?.data[1998] as number) * 1.5))
  })
})

describe('a model shape\'s layout', () => {
  it('names every tensor an initial model holds, with its shape, for any shape (with or without a hidden layer or a chain)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 2, max: 9 }), fc.boolean(), (features, hidden, classes, chain) => {
      const shape = { features, hidden, classes, ...(chain ? { chain: {} } : {}) } as unknown as SoftmaxShape
      const init = initSoftmax(shape, 1)
      const layout = softmaxLayout(shape)
      expect([...layout.keys()].sort()).toEqual([...init.keys()])
      for (const [name, { shape: dims }] of layout) expect(init.get(name)?.shape).toEqual(dims)
    }), { seed: 41, numRuns: 200 })
  })
})
