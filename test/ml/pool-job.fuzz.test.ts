import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { packJob, TrainJob, unpackJob, WorkerReply } from '../../src/ml/pool/job.ts'
import type { SoftmaxTraining } from '../../src/ml/sparse-softmax.ts'

const runs = { seed: 1617, numRuns: 300 }
const f32 = fc.float({ noDefaultInfinity: true, noNaN: true })
const row = fc.array(fc.tuple(fc.nat(99), f32), { maxLength: 6 }).map(pairs => ({ indices: Int32Array.from(pairs, p => p[0]), values: Float32Array.from(pairs, p => p[1]) }))
const target = fc.option(fc.array(fc.tuple(fc.nat(2), fc.double({ noNaN: true })), { maxLength: 3 }), { nil: undefined })

describe('a training job across the thread boundary', () => {
  it('unpacks to the arguments it was packed from, value for value, and parses as a job', () => {
    fc.assert(fc.property(fc.array(fc.tuple(row, fc.nat(2), target), { maxLength: 20 }), fc.array(f32, { minLength: 6, maxLength: 6 }), fc.boolean(), (items, kernel, withSoft) => {
      const rows = items.map(i => i[0])
      const labels = items.map(i => i[1])
      const soft = withSoft ? { targets: items.map(i => i[2]), weight: 0.5 } : undefined
      const base = new Map([['dense0.bias', { shape: [3], data: new Float32Array(3) }], ['dense0.kernel', { shape: [2, 3], data: Float32Array.from(kernel) }]])
      const options: SoftmaxTraining = { epochs: 1, batchSize: 4, learningRate: 0.1, seed: 2, ...(soft === undefined ? {} : { soft }) }
      const { job } = packJob(7, { features: 2, hidden: 0, classes: 3 }, base, rows, labels, options)
      const back = unpackJob(TrainJob.parse(structuredClone(job)))
      expect(back.rows.map(r => [Array.from(r.indices), Array.from(r.values)])).toEqual(rows.map(r => [Array.from(r.indices), Array.from(r.values)]))
      expect(back.labels).toEqual(labels)
      expect(back.options.soft).toEqual(soft)
      expect([...back.base].map(([n, t]) => [n, t.shape, Array.from(t.data)])).toEqual([...base].map(([n, t]) => [n, t.shape, Array.from(t.data)]))
    }), runs)
  })

  it('refuses a reply that is not one, without throwing: anything a worker could post', () => {
    fc.assert(fc.property(fc.anything(), reply => { expect(WorkerReply.safeParse(reply).success).toBe(false) }), runs)
    fc.assert(fc.property(fc.nat(), fc.array(fc.nat(4), { maxLength: 3 }), fc.nat(30), (id, shape, n) => {
      // Weights whose values do not fill their shapes are refused, whatever the counts.
      const size = shape.reduce((a, b) => a * b, 1)
      const reply = { kind: 'done', id, loss: 0, backend: 'wasm', weights: { names: ['w'], shapes: [shape], data: new Float32Array(n) } }
      expect(WorkerReply.safeParse(reply).success).toBe(size === n)
    }), runs)
  })
})
