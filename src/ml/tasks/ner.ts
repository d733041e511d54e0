import { access } from 'node:fs/promises'
import { join } from 'node:path'
import type { z } from 'zod'
import { DatasetError } from '../../core/errors.ts'
import { silentLogger } from '../../core/logger.ts'
import { readConll, type TaggedSentence } from '../../data/conll.ts'
import type { SparseVector } from '../../data/features.ts'
import { warnTestInTrain } from '../../data/overlap.ts'
import { fixedSubset, splitShards } from '../../data/partition.ts'
import { Rng } from '../../data/rng.ts'
import { abbreviations } from '../../data/abbreviations.ts'
import { tokenFeatures } from '../../data/token-features.ts'
import { entityScores } from '../../metrics/entities.ts'
import { initBackend } from '../backend.ts'
import { bioChain, chainDecode, chainNll, chainTokenEntropy, zeroScores, type Chain } from '../crf.ts'
import { chainScores, initSoftmax, meanEntropyOf, meansByClass, rememberLogits, softmaxLogits, softmaxLogLikelihood, softmaxLogProbs, trainSoftmax, type SoftmaxShape } from '../sparse-softmax.ts'
import type { ClassScore, EvalResult, NerConfig, Shard, ShardOptions, Task, TaskOptions, TrainOptions, TrainResult } from '../task.ts'
import { softmaxTraining } from '../task.ts'
import type { Weights } from '../weights.ts'

type Config = z.infer<typeof NerConfig>

/** A sentence with its tags as class ids and its tokens' features computed once. */
interface Sentence extends TaggedSentence {
  labels: number[]
  x: SparseVector[]
}

/**
 * Named-entity recognition (BC5CDR: Chemical, Disease): a linear-chain CRF over hashed window
 * features (or, with `crf: false`, per-token softmax), decoded as valid BIO by Viterbi, scored
 * with entity-level micro F1 (seqeval conventions). Shards are split by sentence; non-IID
 * partitions use each sentence's first entity type.
 */
export async function createNerTask (config: Config, options: TaskOptions = {}): Promise<Task<Sentence>> {
  await initBackend(options)
  const logger = options.logger ?? silentLogger
  const trainModel = options.trainer ?? trainSoftmax
  const devPath = join(config.data, 'dev.conll')
  const hasDev = await access(devPath).then(() => true, () => false)
  const [trainRaw, testRaw, devRaw] = await Promise.all([readConll(join(config.data, 'train.conll')), readConll(join(config.data, 'test.conll')), hasDev ? readConll(devPath) : Promise.resolve([])])
  // Tokens hold no whitespace (readConll refuses it), so joined with spaces they are the sequence.
  const sequence = (s: TaggedSentence): string => s.tokens.join(' ')
  warnTestInTrain({ trainFile: join(config.data, 'train.conll'), testFile: join(config.data, 'test.conll'), what: 'token sequence', train: trainRaw.map(sequence), test: testRaw.map(sequence) }, logger)
  // With the tags IOB2 reading makes: a file that starts entities with I-X needs B-X.
  const tags = [...new Set(trainRaw.flatMap(s => [...s.tags, ...iob2(s.tags)]))].sort()
  const index = new Map(tags.map((t, i) => [t, i]))
  const prepare = (s: TaggedSentence, at: number, all: ReadonlyArray<readonly string[]>, file: string): Sentence => ({
    ...s,
    labels: iob2(s.tags).map((t, i) => {
      const id = index.get(t)
      if (id === undefined) throw new DatasetError(`${file}: tag "${s.tags[i] as string}" does not occur in train.conll`)
      return id
    }),
    x: sentenceFeatures(all, at, config)
  })
  const subset = (raw: TaggedSentence[], limit: number | undefined, file: string): Sentence[] => {
    const tokens = raw.map(s => s.tokens)
    return fixedSubset(raw.map((_, at) => at), limit).map(at => prepare(raw[at] as TaggedSentence, at, tokens, file))
  }
  const train = subset(trainRaw, config.trainLimit, 'train.conll')
  const test = subset(testRaw, config.testLimit, 'test.conll')
  // dev.conll, when the folder has one, is for choosing settings; never part of any shard.
  const dev = subset(devRaw, config.testLimit, 'dev.conll')
  const chain = bioChain(tags)
  const shape = { features: config.features, hidden: config.hidden, classes: tags.length, ...(config.crf ? { chain } : {}) }
  const logitsOf = rememberLogits((weights: Weights, rows: Sentence[]) => softmaxLogits(shape, weights, rows.flatMap(s => s.x)))
  /** Each sentence's log-probability of its gold tags: its whole sequence under the CRF, else the sum of its tags'. */
  const sentenceLogLikelihoods = (weights: Weights, rows: Sentence[]): Float64Array => {
    const out = new Float64Array(rows.length)
    let at = 0
    if (!config.crf) {
      const tokens = softmaxLogProbs(shape, weights, rows.flatMap(s => s.x), rows.flatMap(s => s.labels))
      rows.forEach((s, i) => { for (let t = 0; t < s.tokens.length; t++) out[i] = (out[i] as number) + (tokens[at + t] as number); at += s.tokens.length })
      return out
    }
    const logits = logitsOf(weights, rows)
    const scores = chainScores(weights)
    rows.forEach((s, i) => { out[i] = -chainNll(chain, logits, at, s.labels, scores); at += s.tokens.length })
    return out
  }
  /** Mean log-probability per token of the gold tags (without the CRF: summed tag by tag, in the order scores were always summed). */
  const logLikelihood = async (weights: Weights, rows: Sentence[]): Promise<number> => {
    if (!config.crf) return softmaxLogLikelihood(shape, weights, rows.flatMap(s => s.x), rows.flatMap(s => s.labels))
    const tokens = rows.reduce((n, s) => n + s.tokens.length, 0)
    return sentenceLogLikelihoods(weights, rows).reduce((a, b) => a + b, 0) / Math.max(1, tokens)
  }
  /** Mean entropy per token of the model's tag distribution: each token's marginal under the CRF, else its own softmax. */
  const entropy = async (weights: Weights, rows: Sentence[]): Promise<number> => {
    const logits = logitsOf(weights, rows)
    if (!config.crf) return meanEntropyOf(logits, tags.length)
    const scores = chainScores(weights)
    let total = 0
    let at = 0
    for (const s of rows) { total += chainTokenEntropy(chain, logits, at, s.tokens.length, scores); at += s.tokens.length }
    return total / Math.max(1, at)
  }
  /**
   * The same, sentence class by sentence class: a sentence's class is its first entity's tag
   * (0: none), the label its shard was drawn by; `n` counts tokens, so the classes' means
   * weighted by `n` are the overall score.
   */
  const classLogLikelihoods = async (weights: Weights, rows: Sentence[]): Promise<ClassScore[]> =>
    meansByClass(rows.map(sentenceClass), sentenceLogLikelihoods(weights, rows), rows.map(s => s.tokens.length))
  const sentenceClass = (s: Sentence): number => { const t = s.tags.find(tag => tag !== 'O'); return t === undefined ? 0 : 1 + (index.get(t) as number) }
  logger.info('ner task loaded', { train: train.length, test: test.length, tags })

  return {
    name: 'ner',
    metricName: 'entityF1',
    ...(dev.length > 0 ? { dev } : {}),
    initialWeights: seed => initSoftmax(shape, seed),

    shards (parts: number, options: ShardOptions): Array<Shard<Sentence>> {
      return splitShards(train, train.map(sentenceClass), parts, { ...options, valFraction: config.valFraction })
    },

    async train (base: Weights, shard: Shard<Sentence>, options: TrainOptions): Promise<TrainResult> {
      const sequences = shard.train.map(s => s.tokens.length)
      const { weights, loss } = await trainModel(shape, base, shard.train.flatMap(s => s.x), shard.train.flatMap(s => s.labels), { ...softmaxTraining(config, options), sequences })
      return { weights, numSamples: shard.train.reduce((n, s) => n + s.tokens.length, 0), loss }
    },

    async evaluate (weights: Weights, examples: 'test' | Sentence[]): Promise<EvalResult> {
      const rows = examples === 'test' ? test : examples
      const predicted = tagSentences({ shape, chain, tags, crf: config.crf }, weights, rows.map(s => s.x))
      const scores = entityScores(rows.map(s => s.tags), predicted)
      return { metric: scores.f1, metricName: 'entityF1', details: { precision: scores.precision, recall: scores.recall, f1: scores.f1, sentences: rows.length } }
    },

    ...(config.judge === 'logLikelihood' ? { judge: { name: 'logLikelihood', score: logLikelihood, entropy, byClass: classLogLikelihoods, tolerance: config.tolerance } } : {}),

    samples (shard) { return shard.train.reduce((n, s) => n + s.tokens.length, 0) },

    poison (examples, options) {
      const rng = new Rng(options.seed)
      const relabel = (id: number): number => options.kind === 'flip' ? (id + 1) % tags.length : rng.int(tags.length)
      return examples.map(s => {
        const poisoned = iob2(s.labels.map(id => tags[options.kind === 'flip' || rng.next() < options.rate ? relabel(id) : id] as string))
        return { ...s, labels: poisoned.map(t => index.get(t) as number), tags: poisoned }
      })
    },

    predictor: { kind: 'ner', tags, features: config.features, context: config.context, hidden: config.hidden, crf: config.crf },

    dispose () {}
  }
}

/**
 * A sentence's token features: they see the abbreviations defined in it and in the `context`
 * sentences before it (the files keep each abstract's sentences in order but mark no
 * document boundaries).
 */
export function sentenceFeatures (sentences: ReadonlyArray<readonly string[]>, at: number, settings: { features: number, context: number }): SparseVector[] {
  const tokens = sentences[at] as readonly string[]
  const defined = abbreviations(sentences.slice(Math.max(0, at - settings.context), at + 1))
  return tokens.map((_, i) => tokenFeatures(tokens, i, settings.features, defined))
}

/** Each sentence's tags as the model decodes them: Viterbi under the CRF's learnt scores, or per-token scores kept to valid BIO. */
export function tagSentences (model: { shape: SoftmaxShape, chain: Chain, tags: readonly string[], crf: boolean }, weights: Weights, sentences: ReadonlyArray<readonly SparseVector[]>): string[][] {
  const logits = softmaxLogits(model.shape, weights, sentences.flat())
  const learnt = model.crf ? chainScores(weights) : zeroScores(model.tags.length)
  let at = 0
  return sentences.map(x => {
    const path = chainDecode(model.chain, logits, at, x.length, learnt)
    at += x.length
    return path.map(id => model.tags[id] as string)
  })
}

/**
 * Tags as strict IOB2, the way seqeval reads them: an I-X that follows neither B-X nor I-X
 * begins an entity, so it becomes B-X. The CRF trains only on sequences BIO admits; files in
 * IOB1 style, and poisoned tags, keep the entities they mean.
 */
export function iob2 (tags: readonly string[]): string[] {
  return tags.map((t, i) => t.startsWith('I-') && (i === 0 || (tags[i - 1] as string).slice(2) !== t.slice(2) || tags[i - 1] === 'O') ? `B-${t.slice(2)}` : t)
}
