import * as tf from '@tensorflow/tfjs'
import { describe, expect, it } from 'vitest'
import { initBackend } from '../../src/ml/backend.ts'
import { loadTask, TaskConfig } from '../../src/ml/task.ts'
import { weightsSha256 } from '../../src/ml/weights.ts'

const config = TaskConfig.parse({ kind: 'classify', trainLimit: 500, testLimit: 200, maxVocab: 2000, epochs: 2 })

describe('TF.js backend', () => {
  it('picks the best backend that loads and says why the better ones did not', async () => {
    const choice = await initBackend()
    expect(['wasm', 'cpu', 'tensorflow']).toContain(choice.backend)
    expect(choice.backend).toBe(tf.getBackend())
    expect(choice.skipped.map(s => s.backend).slice(0, 2)).toEqual(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'])
    expect(choice.skipped.every(s => s.reason.length > 0)).toBe(true)
  })
})

describe('classify task', () => {
  it('trains bit-reproducibly for a seed, and differently for another seed', async () => {
    const task = await loadTask(config)
    const [shard] = task.shards(2, { seed: 1, partition: 'iid' })
    if (shard === undefined) throw new Error('no shard')
    const base = task.initialWeights(1)
    expect(weightsSha256(task.initialWeights(1))).toBe(weightsSha256(base))
    const a = await task.train(base, shard, { seed: 5 })
    const b = await task.train(base, shard, { seed: 5 })
    const c = await task.train(base, shard, { seed: 6 })
    expect(weightsSha256(a.weights)).toBe(weightsSha256(b.weights))
    expect(weightsSha256(c.weights)).not.toBe(weightsSha256(a.weights))
    expect(a.numSamples).toBe(shard.train.length)
  })

  it('decays its rate by round: round 3 at rate r trains exactly as round 1 at r · decay²', async () => {
    const decaying = await loadTask(TaskConfig.parse({ ...config, learningRate: 0.02, rateDecay: 0.5 }))
    const constant = await loadTask(TaskConfig.parse({ ...config, learningRate: 0.005, rateDecay: 1 }))
    const [shard] = decaying.shards(2, { seed: 1, partition: 'iid' })
    if (shard === undefined) throw new Error('no shard')
    const base = decaying.initialWeights(1)
    const third = await decaying.train(base, shard, { seed: 5, round: 3 })
    expect(weightsSha256(third.weights)).toBe(weightsSha256((await constant.train(base, shard, { seed: 5, round: 3 })).weights))
    expect(weightsSha256(third.weights)).not.toBe(weightsSha256((await decaying.train(base, shard, { seed: 5, round: 1 })).weights))
  })

  it('fits its vocabulary on the training split only, and holds a dev split out of every shard', async () => {
    const task = await loadTask(config)
    const shards = task.shards(3, { seed: 1, partition: 'iid' })
    const kernel = task.initialWeights(1).get('dense0.kernel')
    expect(kernel?.shape).toEqual([2000, 32])
    const dev = new Set(task.dev?.map(e => (e as { text: string }).text))
    expect(dev.size).toBe(336)
    expect(shards.flatMap(s => [...s.train, ...s.val]).some(e => dev.has((e as { text: string }).text))).toBe(false)
  })

  it('trains reproducibly on hashed features too', async () => {
    const task = await loadTask(TaskConfig.parse({ ...config, featurizer: 'hashed', features: 512 }))
    const [shard] = task.shards(2, { seed: 1, partition: 'iid' })
    if (shard === undefined) throw new Error('no shard')
    expect(task.initialWeights(1).get('dense0.kernel')?.shape).toEqual([512, 32])
    const a = await task.train(task.initialWeights(1), shard, { seed: 5 })
    expect(weightsSha256((await task.train(task.initialWeights(1), shard, { seed: 5 })).weights)).toBe(weightsSha256(a.weights))
  })

  it('learns: accuracy on held-out data rises above the majority-class rate', async () => {
    const task = await loadTask(config)
    const [shard] = task.shards(1, { seed: 2, partition: 'iid' })
    if (shard === undefined) throw new Error('no shard')
    const before = await task.evaluate(task.initialWeights(2), 'test')
    const trained = await task.train(task.initialWeights(2), shard, { seed: 2 })
    const after = await task.evaluate(trained.weights, 'test')
    expect(after.metricName).toBe('accuracy')
    expect(after.metric).toBeGreaterThan(before.metric)
    expect(after.metric).toBeGreaterThan(0.2) // C14, the largest class, is 15% of the test split
    expect(after.details.examples).toBe(200)
  })

  it('judges by the validation labels\' log-likelihood, or by accuracy when configured', async () => {
    expect((await loadTask(TaskConfig.parse({ ...config, judge: 'accuracy' }))).judge).toBeUndefined()
    const task = await loadTask(config)
    const [shard] = task.shards(1, { seed: 2, partition: 'iid' })
    if (shard === undefined || task.judge === undefined) throw new Error('no shard or judge')
    const base = task.initialWeights(2)
    const trained = (await task.train(base, shard, { seed: 2 })).weights
    const before = await task.judge.score(base, shard.val)
    const after = await task.judge.score(trained, shard.val)
    expect(task.judge.name).toBe('logLikelihood')
    expect(task.judge.tolerance).toBe(0.1)
    expect(task.judge.relativeTolerance).toBe(0.1)
    expect(before).toBeLessThan(0)
    expect(before).toBeCloseTo(-Math.log(23), 0) // near-uniform at the start: 23 classes
    expect(after).toBeGreaterThan(before)
    // Undoing the update (w0 − Δ) makes the labels less likely than the start did.
    const undone = new Map([...base].map(([name, t]) => [name, { shape: t.shape, data: t.data.map((v, i) => 2 * v - (trained.get(name)?.data[i] as number)) }]))
    expect(await task.judge.score(undone, shard.val)).toBeLessThan(before)
  })

  it('leaks no tensors across rounds of training and evaluation', async () => {
    const task = await loadTask(config)
    const [shard] = task.shards(2, { seed: 3, partition: 'dirichlet', alpha: 0.5 })
    if (shard === undefined) throw new Error('no shard')
    let weights = task.initialWeights(3)
    const counts: number[] = [tf.memory().numTensors]
    for (let round = 0; round < 2; round++) {
      weights = (await task.train(weights, shard, { seed: round })).weights
      await task.evaluate(weights, shard.val)
      await task.evaluate(weights, 'test')
      counts.push(tf.memory().numTensors)
    }
    expect(new Set(counts).size).toBe(1)
  })

  it('refuses weights of another shape (InvalidWeightsError)', async () => {
    const task = await loadTask(config)
    const other = await loadTask(TaskConfig.parse({ ...config, maxVocab: 500 }))
    const [shard] = task.shards(2, { seed: 1, partition: 'iid' })
    await expect(task.train(other.initialWeights(1), shard as never, { seed: 1 })).rejects.toMatchObject({ name: 'InvalidWeightsError' })
  })
})
