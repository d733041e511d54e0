import * as tf from '@tensorflow/tfjs'
import type { z } from 'zod'
import { ConfigError } from '../../core/errors.ts'
import { silentLogger, type Logger } from '../../core/logger.ts'
import { loadClassification, type Example } from '../../data/classification.ts'
import { densify, hashFeatures, type SparseVector } from '../../data/features.ts'
import { dirichlet, iid } from '../../data/partition.ts'
import { mixSeed, Rng } from '../../data/rng.ts'
import { classificationScores } from '../../metrics/classification.ts'
import { initBackend } from '../backend.ts'
import type { ClassifyConfig, EvalResult, Shard, ShardOptions, Task, TrainOptions, TrainResult } from '../task.ts'
import { assertCompatible, type Weights } from '../weights.ts'

type Config = z.infer<typeof ClassifyConfig>

/** An example with its features computed once: training and evaluation reuse them. */
interface Featurized extends Example {
  x: SparseVector
}

/**
 * Text classification (the first task: OHSUMED-23 disease categories). Hashed word
 * features → an optional hidden ReLU layer → softmax, trained with Adam in a hand-written
 * loop: seeded batches and seeded initial weights make training bit-reproducible.
 */
export async function createClassifyTask (config: Config, options: { logger?: Logger } = {}): Promise<Task<Featurized>> {
  await initBackend(options)
  const logger = options.logger ?? silentLogger
  const data = await loadClassification(config.data)
  const featurize = (e: Example): Featurized => ({ ...e, x: hashFeatures(e.text, config.features) })
  // Fixed subsets (seed 0), so a limit picks the same examples in every run.
  const subset = <T>(rows: T[], limit?: number): T[] => limit === undefined || limit >= rows.length ? rows : new Rng(0).shuffle([...rows]).slice(0, limit)
  const train = subset(data.train, config.trainLimit).map(featurize)
  const test = subset(data.test, config.testLimit).map(featurize)
  const classes = data.labels.length
  logger.info('classify task loaded', { train: train.length, test: test.length, classes, features: config.features })
  const layers = config.hidden === 0 ? [[config.features, classes]] : [[config.features, config.hidden], [config.hidden, classes]]

  const forward = (params: tf.Tensor[], x: tf.Tensor2D): tf.Tensor2D => {
    let h: tf.Tensor2D = x
    for (let l = 0; l < layers.length; l++) {
      h = tf.add(tf.matMul(h, params[2 * l] as tf.Tensor2D), params[2 * l + 1] as tf.Tensor1D)
      if (l < layers.length - 1) h = tf.relu(h)
    }
    return h
  }
  const names = layers.flatMap((_, l) => [`dense${l}.kernel`, `dense${l}.bias`])
  const toTensors = (w: Weights): tf.Tensor[] => names.map(n => {
    const t = w.get(n)
    if (t === undefined) throw new ConfigError(`weights lack tensor ${n}`)
    return tf.tensor(t.data, t.shape)
  })

  const predict = (weights: Weights, rows: readonly Featurized[]): number[] => {
    const params = toTensors(weights)
    const out: number[] = []
    try {
      for (let i = 0; i < rows.length; i += 256) {
        const batch = rows.slice(i, i + 256)
        const ids = tf.tidy(() => forward(params, tf.tensor2d(densify(batch.map(r => r.x), config.features), [batch.length, config.features])).argMax(1))
        out.push(...(ids.dataSync() as Int32Array))
        ids.dispose()
      }
    } finally {
      tf.dispose(params)
    }
    return out
  }

  /** Glorot-uniform kernels and zero biases from a seeded stream. */
  const initialWeights = (seed: number): Weights => {
    const rng = new Rng(mixSeed(seed, 0x1417))
    const w: Weights = new Map()
    layers.forEach(([fanIn, fanOut], l) => {
      const limit = Math.sqrt(6 / ((fanIn as number) + (fanOut as number)))
      w.set(`dense${l}.kernel`, { shape: [fanIn as number, fanOut as number], data: Float32Array.from({ length: (fanIn as number) * (fanOut as number) }, () => (2 * rng.next() - 1) * limit) })
      w.set(`dense${l}.bias`, { shape: [fanOut as number], data: new Float32Array(fanOut as number) })
    })
    return new Map([...w].sort(([a], [b]) => a < b ? -1 : 1))
  }
  const shapeReference = initialWeights(0)

  return {
    name: 'classify',
    metricName: 'accuracy',

    initialWeights,

    shards (parts: number, options: ShardOptions): Array<Shard<Featurized>> {
      const rng = new Rng(mixSeed(options.seed, 0x5a4d))
      const split = options.partition === 'iid' ? iid(train.length, parts, rng) : dirichlet(train.map(e => e.label), parts, options.alpha ?? 1, rng)
      return split.map(indices => {
        const mine = rng.shuffle(indices.map(i => train[i] as Featurized))
        const nVal = Math.max(1, Math.round(mine.length * config.valFraction))
        return { val: mine.slice(0, nVal), train: mine.slice(nVal) }
      })
    },

    async train (base: Weights, shard: Shard<Featurized>, options: TrainOptions): Promise<TrainResult> {
      assertCompatible(base, shapeReference)
      const rng = new Rng(options.seed)
      const params = toTensors(base).map(t => { const v = tf.variable(t); t.dispose(); return v })
      const optimizer = tf.train.adam(config.learningRate)
      let loss = 0
      try {
        for (let epoch = 0; epoch < config.epochs; epoch++) {
          options.signal?.throwIfAborted()
          const order = rng.shuffle(shard.train.map((_, i) => i))
          let sum = 0
          for (let i = 0; i < order.length; i += config.batchSize) {
            const batch = order.slice(i, i + config.batchSize).map(j => shard.train[j] as Featurized)
            const cost = tf.tidy(() => {
              const x = tf.tensor2d(densify(batch.map(r => r.x), config.features), [batch.length, config.features])
              const y = tf.oneHot(tf.tensor1d(batch.map(r => r.label), 'int32'), classes)
              return optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, forward(params, x)) as tf.Scalar, true) as tf.Scalar
            })
            sum += (await cost.data())[0] as number * batch.length
            cost.dispose()
          }
          loss = sum / Math.max(1, shard.train.length)
          options.onProgress?.({ type: 'conclave:train:epoch', epoch, loss })
        }
        const weights: Weights = new Map()
        params.forEach((p, i) => { weights.set(names[i] as string, { shape: [...p.shape], data: Float32Array.from(p.dataSync() as Float32Array) }) })
        return { weights: new Map([...weights].sort(([a], [b]) => a < b ? -1 : 1)), numSamples: shard.train.length, loss }
      } finally {
        optimizer.dispose()
        tf.dispose(params)
      }
    },

    async evaluate (weights: Weights, examples: 'test' | Featurized[]): Promise<EvalResult> {
      const rows = examples === 'test' ? test : examples
      const scores = classificationScores(rows.map(r => r.label), predict(weights, rows))
      return { metric: scores.accuracy, metricName: 'accuracy', details: { ...scores, examples: rows.length } }
    },

    poison (examples, options) {
      const rng = new Rng(options.seed)
      return examples.map(e => {
        if (options.kind === 'flip') return { ...e, label: (e.label + 1) % classes }
        return rng.next() < options.rate ? { ...e, label: rng.int(classes) } : e
      })
    },

    dispose () {}
  }
}
