import type { z } from 'zod'
import { DatasetError } from '../../core/errors.ts'
import { silentLogger } from '../../core/logger.ts'
import { loadClassification, type Example } from '../../data/classification.ts'
import { hashFeatures, type SparseVector } from '../../data/features.ts'
import { fixedSubset, splitShards } from '../../data/partition.ts'
import { Rng } from '../../data/rng.ts'
import { fitTfidf } from '../../data/tokenizer.ts'
import { classificationScores } from '../../metrics/classification.ts'
import { initBackend } from '../backend.ts'
import type { ClassifyConfig, EvalResult, Shard, ShardOptions, Task, TaskOptions, TrainOptions, TrainResult } from '../task.ts'
import { softmaxTraining } from '../task.ts'
import { initSoftmax, meanEntropyOf, meanKlOf, meanLogLikelihoodOf, predictSoftmax, rememberLogits, softmaxClassLogLikelihoods, softmaxLogits, trainSoftmax } from '../sparse-softmax.ts'
import type { PredictorSpec } from '../predictor.ts'
import type { Weights } from '../weights.ts'

type Config = z.infer<typeof ClassifyConfig>

/** An example with its features computed once: training and evaluation reuse them. */
interface Featurized extends Example {
  x: SparseVector
}

/**
 * Text classification (the first task: OHSUMED-23 disease categories): TF-IDF (or hashed)
 * word features into the shared sparse-softmax model.
 */
export async function createClassifyTask (config: Config, options: TaskOptions = {}): Promise<Task<Featurized>> {
  await initBackend(options)
  const logger = options.logger ?? silentLogger
  const trainModel = options.trainer ?? trainSoftmax
  const data = await loadClassification(config.data, { devFraction: config.devFraction, logger })
  const trainRaw = fixedSubset(data.train, config.trainLimit)
  const { features, vector, spec } = featurizer(config, trainRaw.map(e => e.text))
  const featurize = (e: Example): Featurized => ({ ...e, x: vector(e.text) })
  const train = trainRaw.map(featurize)
  const dev = data.dev.map(featurize)
  const test = fixedSubset(data.test, config.testLimit).map(featurize)
  const classes = data.labels.length
  logger.info('classify task loaded', { train: train.length, dev: dev.length, test: test.length, classes, featurizer: config.featurizer, features })
  const shape = { features, hidden: config.hidden, classes }
  const logitsOf = rememberLogits((weights: Weights, rows: Featurized[]) => softmaxLogits(shape, weights, rows.map(r => r.x)))

  return {
    name: 'classify',
    metricName: 'accuracy',
    dev,

    initialWeights: seed => initSoftmax(shape, seed),

    shards (parts: number, options: ShardOptions): Array<Shard<Featurized>> {
      return splitShards(train, train.map(e => e.label), parts, { ...options, valFraction: config.valFraction })
    },

    async train (base: Weights, shard: Shard<Featurized>, options: TrainOptions): Promise<TrainResult> {
      const { weights, loss } = await trainModel(shape, base, shard.train.map(e => e.x), shard.train.map(e => e.label), softmaxTraining(config, options))
      return { weights, numSamples: shard.train.length, loss }
    },

    async evaluate (weights: Weights, examples: 'test' | Featurized[]): Promise<EvalResult> {
      const rows = examples === 'test' ? test : examples
      const scores = classificationScores(rows.map(r => r.label), predictSoftmax(shape, weights, rows.map(r => r.x)))
      return { metric: scores.accuracy, metricName: 'accuracy', details: { ...scores, examples: rows.length } }
    },

    ...(config.judge === 'logLikelihood'
      ? {
          judge: {
            name: 'logLikelihood',
            score: async (weights: Weights, rows: Featurized[]) => meanLogLikelihoodOf(logitsOf(weights, rows), classes, rows.map(r => r.label)),
            entropy: async (weights: Weights, rows: Featurized[]) => meanEntropyOf(logitsOf(weights, rows), classes),
            movement: async (from: Weights, to: Weights, rows: Featurized[]) => meanKlOf(logitsOf(to, rows), logitsOf(from, rows), classes),
            byClass: async (weights: Weights, rows: Featurized[]) => softmaxClassLogLikelihoods(shape, weights, rows.map(r => r.x), rows.map(r => r.label)),
            tolerance: 0.1,
            relativeTolerance: 0.1
          }
        }
      : {}),

    samples (shard) { return shard.train.length },

    poison (examples, options) {
      const rng = new Rng(options.seed)
      return examples.map(e => {
        if (options.kind === 'flip') return { ...e, label: (e.label + 1) % classes }
        return rng.next() < options.rate ? { ...e, label: rng.int(classes) } : e
      })
    },

    predictor: { kind: 'classify', labels: data.labels, hidden: config.hidden, featurizer: spec },

    dispose () {}
  }
}

/** The featuriser: fitted on the training texts only (tfidf), or fixed (hashed); and what a predictor needs to featurise alike. */
function featurizer (config: Config, trainTexts: readonly string[]): { features: number, vector: (text: string) => SparseVector, spec: Extract<PredictorSpec, { kind: 'classify' }>['featurizer'] } {
  if (config.featurizer === 'hashed') return { features: config.features, vector: text => hashFeatures(text, config.features), spec: { kind: 'hashed', features: config.features } }
  const tfidf = fitTfidf(trainTexts, { minCount: config.minCount, maxSize: config.maxVocab })
  if (tfidf.terms.length === 0) throw new DatasetError(`no word occurs in ${config.minCount} training documents: lower minCount`)
  return { features: tfidf.terms.length, vector: text => tfidf.transform(text), spec: { kind: 'tfidf', terms: [...tfidf.terms], idf: Array.from(tfidf.idf) } }
}
