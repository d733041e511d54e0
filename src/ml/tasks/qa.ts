import type { z } from 'zod'
import { UntaughtError } from '../../core/errors.ts'
import { silentLogger } from '../../core/logger.ts'
import { fixedSubset, splitShards } from '../../data/partition.ts'
import { loadQa, type QaPair } from '../../data/qa.ts'
import { Rng } from '../../data/rng.ts'
import { corpusBleu, tokenize13a } from '../../metrics/bleu.ts'
import { initBackend } from '../backend.ts'
import { answerRows, classCount, fitVocabulary, greedyDecode, readQuestion, softTargets, type Question, type SoftTarget } from '../qa-student.ts'
import { initSoftmax, softmaxLogits, softmaxLogLikelihood, trainSoftmax } from '../sparse-softmax.ts'
import type { EvalResult, QaConfig, Shard, ShardOptions, Task, TaskOptions, TrainOptions, TrainResult } from '../task.ts'
import { softmaxTraining } from '../task.ts'
import type { Weights } from '../weights.ts'

type Config = z.infer<typeof QaConfig>

/** A question, read once, and the answer tokens the student learns from: a teacher's, once one has answered. */
export interface QaExample extends QaPair {
  q: Question
  /** 13a tokens of the target answer; absent until a teacher has answered (see Task.teaching). */
  target?: string[]
  /** Per target word, the teacher's distribution over the student's classes, where the teacher gave one (see softTargets). */
  soft?: Array<SoftTarget | undefined>
}

/**
 * Medical QA by distillation (MedQuAD): the student learns to say a teacher's answer to a
 * question, and is scored with corpus BLEU-4 (sacrebleu conventions) of its greedy answers
 * against the first `answerTokens` tokens of the reference answers. Participants' shards
 * hold questions only; their targets come from asking a teacher (`teaching`), so what a
 * participant learns is what its teacher said. Test and dev keep the dataset's answers as
 * references; their foci never occur in train.
 */
export async function createQaTask (config: Config, options: TaskOptions = {}): Promise<Task<QaExample>> {
  await initBackend(options)
  const logger = options.logger ?? silentLogger
  const trainModel = options.trainer ?? trainSoftmax
  const data = await loadQa(config.data, { devFraction: config.devFraction, logger })
  const trainPairs = fixedSubset(data.train, config.trainLimit)
  const vocabulary = fitVocabulary(trainPairs.map(p => tokenize13a(p.answer).slice(0, config.answerTokens)), config)
  const referenced = (p: QaPair): QaExample => ({ ...p, q: readQuestion(p.question), target: tokenize13a(p.answer) })
  const train: QaExample[] = trainPairs.map(p => ({ ...p, q: readQuestion(p.question) }))
  const dev = fixedSubset(data.dev, config.testLimit).map(referenced)
  const test = fixedSubset(data.test, config.testLimit).map(referenced)
  const shape = { features: config.features, hidden: config.hidden, classes: classCount(vocabulary) }
  logger.info('qa task loaded', { train: train.length, dev: dev.length, test: test.length, vocabulary: vocabulary.words.length, classes: shape.classes })

  const rowsOf = (examples: readonly QaExample[]): { x: ReturnType<typeof answerRows>['x'], y: number[], soft: Array<SoftTarget | undefined> } => {
    const x = []
    const y = []
    const soft = []
    for (const e of examples) {
      if (e.target === undefined) continue
      const rows = answerRows(vocabulary, e.q, e.target, config.answerTokens, config.features)
      x.push(...rows.x)
      y.push(...rows.y)
      // One soft target per answer word; none for the end of the answer.
      soft.push(...rows.y.map((_, i) => e.soft?.[i]))
    }
    return { x, y, soft }
  }

  return {
    name: 'qa',
    metricName: 'bleu',
    dev,
    initialWeights: seed => initSoftmax(shape, seed),

    shards (parts: number, options: ShardOptions): Array<Shard<QaExample>> {
      return splitShards(train, train.map(e => e.qtype), parts, { ...options, valFraction: config.valFraction })
    },

    async train (base: Weights, shard: Shard<QaExample>, options: TrainOptions): Promise<TrainResult> {
      const taught = shard.train.filter(e => e.target !== undefined)
      if (taught.length === 0) throw new UntaughtError('none of these questions has a teacher\'s answer yet: distil before training')
      const { x, y, soft } = rowsOf(taught)
      const { weights, loss } = await trainModel(shape, base, x, y, { ...softmaxTraining(config, options), soft: { targets: soft, weight: config.kl } })
      return { weights, numSamples: taught.length, loss }
    },

    async evaluate (weights: Weights, examples: 'test' | QaExample[]): Promise<EvalResult> {
      const rows = (examples === 'test' ? test : examples).filter(e => e.target !== undefined)
      if (rows.length === 0) throw new UntaughtError('no answered question to score on: distil before evaluating')
      const said = greedyDecode(vocabulary, rows.map(e => e.q), x => softmaxLogits(shape, weights, x), { maxTokens: config.answerTokens, dims: config.features })
      const references = rows.map(e => (e.target as string[]).slice(0, config.answerTokens).join(' '))
      const bleu = corpusBleu(said.map(s => s.join(' ')), references)
      const [p1, p2, p3, p4] = bleu.precisions
      return { metric: bleu.bleu, metricName: 'bleu', details: { bleu: bleu.bleu, p1: p1 ?? 0, p2: p2 ?? 0, p3: p3 ?? 0, p4: p4 ?? 0, brevityPenalty: bleu.brevityPenalty, hypLength: bleu.hypLength, refLength: bleu.refLength, questions: rows.length } }
    },

    /** Answers the student would give, for people to read (and the CLI to print). */
    async answer (weights: Weights, questions: string[]): Promise<string[]> {
      return greedyDecode(vocabulary, questions.map(readQuestion), x => softmaxLogits(shape, weights, x), { maxTokens: config.answerTokens, dims: config.features }).map(s => s.join(' '))
    },

    judge: {
      name: 'logLikelihood',
      tolerance: 0.01,
      /** Mean log-probability per token of the teacher's answers, teacher-forced (cheap: no decoding). */
      async score (weights, examples) {
        const { x, y } = rowsOf(examples)
        if (x.length === 0) throw new UntaughtError('no answered question to judge on: distil before judging')
        return softmaxLogLikelihood(shape, weights, x, y)
      }
    },

    teaching: {
      question: e => e.question,
      learn: (e, answer, topK) => {
        const target = tokenize13a(answer)
        return { ...e, target, soft: topK === undefined ? undefined : softTargets(vocabulary, e.q, target, topK, { maxTokens: config.answerTokens }) }
      },
      taught: e => e.target !== undefined,
      pairs: trainPairs
    },

    samples (shard) { return shard.train.length },

    poison (examples, options) {
      const rng = new Rng(options.seed)
      const taught = examples.filter(e => e.target !== undefined)
      return examples.map((e, i) => {
        if (e.target === undefined || taught.length < 2) return e
        // Another question's answer, with its soft targets.
        const other = (k: number): QaExample => ({ ...e, target: taught[k]?.target, soft: taught[k]?.soft })
        if (options.kind === 'flip') return other((taught.indexOf(e) + 1) % taught.length)
        return rng.next() < options.rate ? other(rng.int(taught.length)) : examples[i] as QaExample
      })
    },

    predictor: { kind: 'qa', words: vocabulary.words, common: vocabulary.common.size, answerTokens: config.answerTokens, features: config.features, hidden: config.hidden },

    dispose () {}
  }
}
