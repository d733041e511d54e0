import { z } from 'zod'
import { hashFeatures, type SparseVector } from '../data/features.ts'
import { tfidfOf } from '../data/tokenizer.ts'
import { initBackend } from './backend.ts'
import { bioChain } from './crf.ts'
import { classCount, greedyDecode, readQuestion, vocabularyOf } from './qa-student.ts'
import { predictSoftmax, softmaxLayout, softmaxLogits, type SoftmaxShape } from './sparse-softmax.ts'
import { sentenceFeatures, tagSentences } from './tasks/ner.ts'
import { assertCompatible, type Weights } from './weights.ts'

/**
 * Everything besides the weights that a task's model needs to answer new examples: its
 * vocabulary and feature settings and its labels, materialised from what the task fitted
 * on its training split, so that a predictor needs neither the run nor the dataset.
 */
const ClassifyPredictor = z.object({
  kind: z.literal('classify'),
  /** Class id → label. */
  labels: z.array(z.string()).min(1),
  hidden: z.number().int().min(0),
  featurizer: z.discriminatedUnion('kind', [
    /** Feature id → term, and its IDF (as float32 values written in full). */
    z.object({ kind: z.literal('tfidf'), terms: z.array(z.string()).min(1), idf: z.array(z.number()) }).strict(),
    z.object({ kind: z.literal('hashed'), features: z.number().int().min(1) }).strict()
  ])
}).strict()

const NerPredictor = z.object({
  kind: z.literal('ner'),
  /** Class id → BIO tag. */
  tags: z.array(z.string()).min(1),
  features: z.number().int().min(1),
  /** Sentences before a sentence whose abbreviation definitions its features see. */
  context: z.number().int().min(0),
  hidden: z.number().int().min(0),
  crf: z.boolean()
}).strict()

const QaPredictor = z.object({
  kind: z.literal('qa'),
  /** The answer words the student can say, most frequent first. */
  words: z.array(z.string()),
  /** The first this many words are never copied from the question. */
  common: z.number().int().min(0),
  answerTokens: z.number().int().min(1),
  features: z.number().int().min(1),
  hidden: z.number().int().min(0)
}).strict()

export const PredictorSpec = z.discriminatedUnion('kind', [ClassifyPredictor, NerPredictor, QaPredictor])
export type PredictorSpec = z.infer<typeof PredictorSpec>

const Id = z.union([z.string(), z.number()]).optional().describe('Copied to the prediction, to join it back to the example')

/** One example per task, as a JSONL line gives it. */
export const PredictorInput = {
  classify: z.object({ id: Id, text: z.string().min(1).describe('The document to classify') }).loose(),
  ner: z.object({ id: Id, tokens: z.array(z.string().regex(/^\S+$/, 'a token has no whitespace')).min(1).describe('The sentence, tokenised as the training data was') }).loose(),
  qa: z.object({ id: Id, question: z.string().trim().min(1).max(4000).describe('The question to answer') }).loose()
} as const

export type PredictorInput<K extends PredictorSpec['kind']> = z.infer<(typeof PredictorInput)[K]>
export type Prediction = { label: string } | { tags: string[] } | { answer: string }

export interface Predictor<K extends PredictorSpec['kind'] = PredictorSpec['kind']> {
  readonly kind: K
  readonly input: (typeof PredictorInput)[K]
  /**
   * The model's answer to each example, in order. NER reads its examples as consecutive
   * sentences of one text, as training read its files: abbreviations defined in the
   * `context` sentences before one are seen by its features.
   */
  predict(examples: ReadonlyArray<PredictorInput<K>>): Prediction[]
}

/** The predictor of a spec and its weights; weights whose tensors do not fit the spec are an InvalidWeightsError. */
export async function createPredictor (spec: PredictorSpec, weights: Weights): Promise<Predictor> {
  await initBackend()
  switch (spec.kind) {
    case 'classify': {
      const shape = { features: spec.featurizer.kind === 'hashed' ? spec.featurizer.features : spec.featurizer.terms.length, hidden: spec.hidden, classes: spec.labels.length }
      fits(shape, weights)
      const vector = classifyFeatures(spec.featurizer)
      const predictor: Predictor<'classify'> = {
        kind: 'classify',
        input: PredictorInput.classify,
        predict: examples => predictSoftmax(shape, weights, examples.map(e => vector(e.text))).map(id => ({ label: spec.labels[id] as string }))
      }
      return predictor
    }
    case 'ner': {
      const chain = bioChain(spec.tags)
      const shape = { features: spec.features, hidden: spec.hidden, classes: spec.tags.length, ...(spec.crf ? { chain } : {}) }
      fits(shape, weights)
      const predictor: Predictor<'ner'> = {
        kind: 'ner',
        input: PredictorInput.ner,
        predict: examples => {
          const sentences = examples.map(e => e.tokens)
          const x = sentences.map((_, at) => sentenceFeatures(sentences, at, spec))
          return tagSentences({ shape, chain, tags: spec.tags, crf: spec.crf }, weights, x).map(tags => ({ tags }))
        }
      }
      return predictor
    }
    case 'qa': {
      const vocabulary = vocabularyOf(spec.words, spec.common)
      const shape = { features: spec.features, hidden: spec.hidden, classes: classCount(vocabulary) }
      fits(shape, weights)
      const predictor: Predictor<'qa'> = {
        kind: 'qa',
        input: PredictorInput.qa,
        predict: examples => greedyDecode(vocabulary, examples.map(e => readQuestion(e.question)), x => softmaxLogits(shape, weights, x), { maxTokens: spec.answerTokens, dims: spec.features })
          .map(said => ({ answer: said.join(' ') }))
      }
      return predictor
    }
  }
}

function classifyFeatures (featurizer: z.infer<typeof ClassifyPredictor>['featurizer']): (text: string) => SparseVector {
  if (featurizer.kind === 'hashed') return text => hashFeatures(text, featurizer.features)
  const tfidf = tfidfOf(featurizer.terms, Float32Array.from(featurizer.idf))
  return text => tfidf.transform(text)
}

/** The weights have the tensors, and the shapes, of the model the spec describes. */
function fits (shape: SoftmaxShape, weights: Weights): void {
  assertCompatible(weights, softmaxLayout(shape))
}
