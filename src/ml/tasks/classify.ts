import type { z } from 'zod'
import { silentLogger, type Logger } from '../../core/logger.ts'
import { loadClassification, type Example } from '../../data/classification.ts'
import { hashFeatures, type SparseVector } from '../../data/features.ts'
import { dirichlet, iid } from '../../data/partition.ts'
import { mixSeed, Rng } from '../../data/rng.ts'
import { classificationScores } from '../../metrics/classification.ts'
import { initBackend } from '../backend.ts'
import type { ClassifyConfig, EvalResult, Shard, ShardOptions, Task, TrainOptions, TrainResult } from '../task.ts'
import { initSoftmax, predictSoftmax, trainSoftmax } from '../sparse-softmax.ts'
import type { Weights } from '../weights.ts'

type Config = z.infer<typeof ClassifyConfig>

/** An example with its features computed once: training and evaluation reuse them. */
interface Featurized extends Example {
  x: SparseVector
}

/**
 * Text classification (the first task: OHSUMED-23 disease categories): hashed word
 * features into the shared sparse-softmax model.
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
  const shape = { features: config.features, hidden: config.hidden, classes }

  return {
    name: 'classify',
    metricName: 'accuracy',

    initialWeights: seed => initSoftmax(shape, seed),

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
      const { weights, loss } = await trainSoftmax(shape, base, shard.train.map(e => e.x), shard.train.map(e => e.label), {
        ...config,
        seed: options.seed,
        signal: options.signal,
        onEpoch: (epoch, l) => options.onProgress?.({ type: 'conclave:train:epoch', epoch, loss: l })
      })
      return { weights, numSamples: shard.train.length, loss }
    },

    async evaluate (weights: Weights, examples: 'test' | Featurized[]): Promise<EvalResult> {
      const rows = examples === 'test' ? test : examples
      const scores = classificationScores(rows.map(r => r.label), predictSoftmax(shape, weights, rows.map(r => r.x)))
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
