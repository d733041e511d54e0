import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import type { SparseVector } from '../../src/data/features.ts'
import { Rng } from '../../src/data/rng.ts'
import { initBackend } from '../../src/ml/backend.ts'
import { bioChain } from '../../src/ml/crf.ts'
import { TrainPool } from '../../src/ml/pool/pool.ts'
import { initSoftmax, trainSoftmax, type SoftmaxShape, type SoftmaxTraining } from '../../src/ml/sparse-softmax.ts'
import { toSafetensors, type Weights } from '../../src/ml/weights.ts'

const rng = new Rng(5)
const features = 64
const rows: SparseVector[] = Array.from({ length: 90 }, () => {
  const indices = Int32Array.from(new Set(Array.from({ length: 6 }, () => rng.int(features)))).sort()
  return { indices, values: Float32Array.from(indices, () => rng.next()) }
})
const tags = ['B-Chemical', 'I-Chemical', 'O']
const labels = rows.map((r, i) => ((r.indices[0] as number) + i) % 3)

/** The three ways tasks train: plain labels (classify), sequences under a chain (ner), soft targets (qa). */
const cases: Array<{ name: string, shape: SoftmaxShape, labels: number[], options: SoftmaxTraining }> = [
  { name: 'labels, hidden layer', shape: { features, hidden: 8, classes: 3 }, labels, options: { epochs: 2, batchSize: 16, learningRate: 0.05, epsilon: 1e-4, seed: 3 } },
  { name: 'sequences under a chain', shape: { features, hidden: 0, classes: 3, chain: bioChain(tags) }, labels: rows.map((_, i) => i % 3 === 0 ? 0 : i % 3 === 1 ? 1 : 2), options: { epochs: 2, batchSize: 20, learningRate: 0.05, seed: 4, sequences: Array.from({ length: 30 }, () => 3) } },
  { name: 'soft targets', shape: { features, hidden: 4, classes: 3 }, labels, options: { epochs: 1, batchSize: 32, learningRate: 0.01, seed: 5, soft: { targets: rows.map((_, i) => i % 4 === 0 ? undefined : i % 4 === 1 ? [] : [[0, 0.25], [2, 0.75]]), weight: 0.5 } } }
]

const bytes = (w: Weights): Buffer => Buffer.from(toSafetensors(w))
const faulty = new URL('../fixtures/pool/faulty-worker.ts', import.meta.url)
const pools: TrainPool[] = []
const poolOf = (options: ConstructorParameters<typeof TrainPool>[0]): TrainPool => { const p = new TrainPool(options); pools.push(p); return p }
afterAll(async () => { await Promise.all(pools.map(async p => p.close())) })

describe('TrainPool', () => {
  it.each(cases)('trains as trainSoftmax does on this thread, bit for bit: $name', async ({ shape, labels, options }) => {
    await initBackend()
    const base = initSoftmax(shape, 9)
    const epochs: number[][] = [[], []]
    const here = await trainSoftmax(shape, base, rows, labels, { ...options, onEpoch: (e, l) => epochs[0]?.push(e, l) })
    const there = await poolOf({ size: 1 }).train(shape, base, rows, labels, { ...options, onEpoch: (e, l) => epochs[1]?.push(e, l) })
    expect(bytes(there.weights).equals(bytes(here.weights))).toBe(true)
    expect(bytes(there.weights).equals(bytes(base))).toBe(false)
    expect(there.loss).toBe(here.loss)
    expect(epochs[1]).toEqual(epochs[0])
  })

  it('runs jobs on two workers at once and gives each its own result', async () => {
    const { shape, options } = cases[0] as (typeof cases)[number]
    const pool = poolOf({ size: 2 })
    const seeds = [1, 2, 3, 4]
    const results = await Promise.all(seeds.map(async seed => pool.train(shape, initSoftmax(shape, 9), rows, labels, { ...options, seed })))
    const expected = await Promise.all(seeds.map(async seed => trainSoftmax(shape, initSoftmax(shape, 9), rows, labels, { ...options, seed })))
    expect(results.map(r => bytes(r.weights).toString('hex'))).toEqual(expected.map(r => bytes(r.weights).toString('hex')))
  })

  it('fails with the error class training here would throw', async () => {
    const { shape, options } = cases[0] as (typeof cases)[number]
    const pool = poolOf({ size: 1 })
    const short = new Map([...initSoftmax(shape, 9)].slice(1))
    await expect(trainSoftmax(shape, short, rows, labels, options)).rejects.toMatchObject({ name: 'InvalidWeightsError', code: 'ERR_INVALID_WEIGHTS' })
    await expect(pool.train(shape, short, rows, labels, options)).rejects.toMatchObject({ name: 'InvalidWeightsError', code: 'ERR_INVALID_WEIGHTS' })
    const chained = cases[1] as (typeof cases)[number]
    await expect(pool.train(chained.shape, initSoftmax(chained.shape, 9), rows, chained.labels, { ...chained.options, sequences: [1] })).rejects.toBeInstanceOf(RangeError)
    // The worker lives on: the next job trains.
    await expect(pool.train(shape, initSoftmax(shape, 9), rows, labels, options)).resolves.toMatchObject({ loss: expect.any(Number) })
  })

  it('aborts a running job and a waiting one with the signal\'s reason, and trains the next', async () => {
    const { shape, options } = cases[0] as (typeof cases)[number]
    const pool = poolOf({ size: 1 })
    const controller = new AbortController()
    const long = { ...options, epochs: 100 }
    const running = pool.train(shape, initSoftmax(shape, 9), rows, labels, { ...long, signal: controller.signal, onEpoch: () => { controller.abort(new Error('stop')) } })
    const waiting = pool.train(shape, initSoftmax(shape, 9), rows, labels, { ...long, signal: controller.signal })
    await expect(running).rejects.toThrow('stop')
    await expect(waiting).rejects.toThrow('stop')
    await expect(pool.train(shape, initSoftmax(shape, 9), rows, labels, { ...options, signal: controller.signal })).rejects.toThrow('stop')
    await expect(pool.train(shape, initSoftmax(shape, 9), rows, labels, options)).resolves.toMatchObject({ loss: expect.any(Number) })
  })

  it('fails the job of a worker that dies with TrainWorkerCrashedError, and replaces the worker', async () => {
    const { shape, options } = cases[0] as (typeof cases)[number]
    const pool = poolOf({ size: 1, worker: faulty })
    const expected = await trainSoftmax(shape, initSoftmax(shape, 9), rows, labels, options)
    const [crashed, next] = await Promise.allSettled([
      pool.train(shape, initSoftmax(shape, 9), rows, labels, { ...options, seed: 666 }),
      pool.train(shape, initSoftmax(shape, 9), rows, labels, options)
    ])
    expect(crashed).toMatchObject({ status: 'rejected', reason: { name: 'TrainWorkerCrashedError', code: 'ERR_TRAIN_WORKER_CRASHED' } })
    expect(next.status === 'fulfilled' && bytes(next.value.weights).equals(bytes(expected.weights))).toBe(true)
  })

  it('refuses a reply that does not parse with BadPoolMessageError', async () => {
    const { shape, options } = cases[0] as (typeof cases)[number]
    const pool = poolOf({ size: 1, worker: faulty })
    await expect(pool.train(shape, initSoftmax(shape, 9), rows, labels, { ...options, seed: 667 })).rejects.toMatchObject({ name: 'BadPoolMessageError' })
    await expect(pool.train(shape, initSoftmax(shape, 9), rows, labels, options)).resolves.toMatchObject({ loss: expect.any(Number) })
  })

  it('refuses weights a worker trained on another backend than this thread\'s with TrainBackendMismatchError', async () => {
    const { shape, options } = cases[0] as (typeof cases)[number]
    const pool = poolOf({ size: 1, worker: faulty })
    await expect(pool.train(shape, initSoftmax(shape, 9), rows, labels, { ...options, seed: 668 })).rejects.toMatchObject({ name: 'TrainBackendMismatchError' })
  })

  it('closes: waiting and running jobs fail with TrainPoolClosedError, and later ones are refused', async () => {
    const { shape, options } = cases[0] as (typeof cases)[number]
    const pool = new TrainPool({ size: 1 })
    const jobs = Promise.allSettled([1, 2].map(async seed => pool.train(shape, initSoftmax(shape, 9), rows, labels, { ...options, epochs: 100, seed })))
    await pool.close()
    expect(await jobs).toMatchObject([1, 2].map(() => ({ status: 'rejected', reason: { name: 'TrainPoolClosedError' } })))
    await expect(pool.train(shape, initSoftmax(shape, 9), rows, labels, options)).rejects.toMatchObject({ name: 'TrainPoolClosedError' })
  })

  it.each(['close', 'forget'])('lets its process exit once done (%s)', async (how) => {
    const script = fileURLToPath(new URL('../fixtures/pool/close-pool.ts', import.meta.url))
    const { stdout } = await promisify(execFile)(process.execPath, [script, how], { timeout: 60_000 })
    expect(JSON.parse(stdout)).toEqual({ loss: expect.any(Number) })
  })

  it('refuses a size below one', () => {
    expect(() => new TrainPool({ size: 0 })).toThrow(RangeError)
  })
})
