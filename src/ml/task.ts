import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import { ConfigError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { TeacherAnswer } from '../teachers/index.ts'
import type { SoftmaxTrainer } from './pool/index.ts'
import type { PredictorSpec } from './predictor.ts'
import type { SoftmaxTraining } from './sparse-softmax.ts'
import type { Weights } from './weights.ts'

/** A participant's own data: it trains on `train` and judges peers' updates on `val`. */
export interface Shard<Example = unknown> {
  train: Example[]
  val: Example[]
}

export interface TrainResult {
  weights: Weights
  numSamples: number
  /** Mean training loss of the last epoch. */
  loss: number
}

export interface EvalResult {
  metric: number
  metricName: string
  details: Record<string, number>
}

export interface ShardOptions {
  seed: number
  partition: 'iid' | 'dirichlet'
  /** Dirichlet concentration; smaller is more skewed. @default 1 */
  alpha?: number
}

export interface TrainOptions {
  seed: number
  /** The federation round this training is for (1 is the first); rates that decay by round read it. @default 1 */
  round?: number
  signal?: AbortSignal
  onProgress?: (event: { type: 'conclave:train:epoch', epoch: number, loss: number }) => void
}

/** A learning task: its model, its data and its metric. The federation sees only this. */
export interface Task<Example = unknown> {
  readonly name: string
  readonly metricName: string
  /** Deterministic for a seed. */
  initialWeights(seed: number): Weights
  shards(parts: number, options: ShardOptions): Array<Shard<Example>>
  train(base: Weights, shard: Shard<Example>, options: TrainOptions): Promise<TrainResult>
  /** The most `numSamples` training on `shard` can report (examples, or tokens for ner): what a member declares at enrolment. */
  samples(shard: Shard<Example>): number
  /** `'test'` scores the task's held-out test split. */
  evaluate(weights: Weights, examples: 'test' | Example[]): Promise<EvalResult>
  /**
   * Held out of every shard (dev.jsonl, or carved out of train): for choosing settings,
   * so nothing is tuned on the test split. Absent for tasks without one.
   */
  readonly dev?: Example[]
  /**
   * Examples with corrupted labels, for attack simulations: `noise` replaces a `rate`
   * share of labels with random ones, `flip` maps every label to another fixed one.
   */
  poison(examples: Example[], options: { kind: 'noise' | 'flip', rate: number, seed: number }): Example[]
  /**
   * How peers judge an update, where the reported metric is a poor judge: a score of
   * examples, higher is better. QA judges by the log-likelihood of the teacher's answers,
   * because BLEU of greedy answers is flat near zero early on and would let harm through.
   * Absent: peers judge by `evaluate`'s metric (see judgeOf).
   */
  readonly judge?: Judge<Example>
  /** Tasks learned from a teacher (qa): shards hold questions, and targets come from asking. */
  readonly teaching?: Teaching<Example>
  /** What a predictor needs besides the weights (vocabulary, features, labels), as fitted on the training split: `conclave export` writes it. */
  readonly predictor?: PredictorSpec
  /** Generative tasks: the model's answers to free questions. */
  answer?(weights: Weights, questions: string[]): Promise<string[]>
  dispose(): void
}

/** A score of examples under some weights, higher is better, and how much worse an update may make it. */
export interface Judge<Example> {
  name: string
  score(weights: Weights, examples: Example[]): Promise<number>
  /** How much lower an update may make the score and still pass, in the score's units, where the run does not say. */
  tolerance: number
  /**
   * How much of what the federation has taught me (the score at the global model minus the
   * score at the initial one) an update may undo on top of `tolerance`, where the run does
   * not say. @default 0
   */
  relativeTolerance?: number
  /**
   * The score class by class, for judges whose score is a mean over labelled examples:
   * each label's examples and their mean score. Absent: the task has no per-class effects.
   */
  byClass?(weights: Weights, examples: Example[]): Promise<ClassScore[]>
  /**
   * The mean entropy (nats) of the model's predicted distribution over the examples: how
   * unsure it is. Absent: the task's judge cannot tell (the `minSharpening` term needs it).
   */
  entropy?(weights: Weights, examples: Example[]): Promise<number>
  /**
   * How far the model's predictions over the examples move from `from` to `to`: the mean KL
   * divergence (nats) of the predicted distribution at `to` from the one at `from`. Absent: the
   * task's judge cannot tell (the `minMovement` term needs it).
   */
  movement?(from: Weights, to: Weights, examples: Example[]): Promise<number>
}

/** One label's share of a judge's score: its examples among mine and their mean score. */
export interface ClassScore { label: number, n: number, mean: number }

/** The task's judge, or its reported metric with a tolerance of 0.01 (one point). */
export function judgeOf<E> (task: Task<E>): Judge<E> {
  return task.judge ?? { name: task.metricName, score: async (w, e) => (await task.evaluate(w, e)).metric, tolerance: 0.01 }
}

/** How a task's examples get their targets from a teacher. */
export interface Teaching<Example> {
  /** What to ask the teacher for this example. */
  question(example: Example): string
  /** The example with the teacher's answer as its target, and its token distributions where the teacher gave them. */
  learn(example: Example, answer: string, topK?: TeacherAnswer['topK']): Example
  /** Whether the example has a target yet. */
  taught(example: Example): boolean
  /** The dataset's own question–answer pairs: what the embedded dataset teacher knows. */
  readonly pairs: ReadonlyArray<{ question: string, answer: string }>
}

/** A task's training settings with one call's seed, signal and progress, as the sparse softmax takes them. */
export function softmaxTraining (settings: { epochs: number, batchSize: number, learningRate: number, rateDecay?: number, adamEpsilon?: number }, options: TrainOptions): SoftmaxTraining {
  return {
    epsilon: settings.adamEpsilon,
    epochs: settings.epochs,
    batchSize: settings.batchSize,
    learningRate: settings.learningRate * (settings.rateDecay ?? 1) ** ((options.round ?? 1) - 1),
    seed: options.seed,
    signal: options.signal,
    onEpoch: (epoch, loss) => options.onProgress?.({ type: 'conclave:train:epoch', epoch, loss })
  }
}

/** The examples reports score on: the test split, or the dev split while choosing settings. */
export function evalExamples<E> (task: Task<E>, split: 'test' | 'dev'): 'test' | E[] {
  if (split === 'test') return 'test'
  if (task.dev === undefined || task.dev.length === 0) throw new ConfigError(`task ${task.name} has no dev split to score on`)
  return task.dev
}

const bundled = (name: string): string => fileURLToPath(new URL(`../../data/${name}`, import.meta.url))

export const ClassifyConfig = z.object({
  kind: z.literal('classify'),
  /** Folder with train.jsonl / test.jsonl ({ text, label }), optional dev.jsonl and labels.json. @default the bundled OHSUMED-23 */
  data: z.string().default(bundled('ohsumed23')),
  /**
   * `tfidf`: word unigrams over a vocabulary with IDF, both fitted on the training split
   * (every participant featurises alike, as if the vocabulary were published with the task).
   * `hashed`: unigrams + bigrams hashed into `features` buckets, no statistics from any data.
   * @default 'tfidf'
   */
  featurizer: z.enum(['tfidf', 'hashed']).default('tfidf'),
  /** tfidf: keep at most this many terms, most frequent first. @default 20000 */
  maxVocab: z.number().int().min(1).max(1 << 20).default(20_000),
  /** tfidf: a term must occur in at least this many training documents. @default 2 */
  minCount: z.number().int().min(1).default(2),
  /** hashed: feature buckets. @default 8192 */
  features: z.number().int().min(16).max(1 << 20).default(8192),
  /** Hidden ReLU units; 0 is multinomial logistic regression. @default 32 */
  hidden: z.number().int().min(0).max(4096).default(32),
  /** Local epochs per round. @default 3 */
  epochs: z.number().int().min(1).max(100).default(3),
  /** @default 32 */
  batchSize: z.number().int().min(1).max(4096).default(32),
  /** Adam learning rate in round 1. @default 0.01 */
  learningRate: z.number().positive().max(10).default(0.01),
  /**
   * Each round's rate is the previous round's times this. Every round starts a fresh Adam,
   * whose first steps are full-sized whatever the gradient: without decay, a model that has
   * already converged is knocked off it again each round (centralised dev accuracy fell from
   * 63.7 to 52.4 between rounds 8 and 9 at a constant rate). Chosen on the dev split with
   * adamEpsilon (docs/results/classify-schedule.md). @default 0.9
   */
  rateDecay: z.number().gt(0).max(1).default(0.9),
  /**
   * Adam's ε. TF.js's 1e-7 turns the tiny gradients of a model that fits its data into
   * full-sized steps; 1e-4 kept centralised training stable over 10 rounds on dev, where
   * with 1e-7 it fell 8–16 points in round 9 or 10 for seeds 1–3. @default 1e-4
   */
  adamEpsilon: z.number().positive().max(1).default(1e-4),
  /** Share of each participant's data held out as its validation set. @default 0.15 */
  valFraction: z.number().gt(0).lt(1).default(0.15),
  /**
   * How peers judge an update on their validation examples: `accuracy` (tolerance 0.01), or
   * `logLikelihood`, the mean log-probability of the true labels (tolerance 0.1 nats plus a
   * tenth of what the federation has taught the peer since the initial model): continuous,
   * where ~90 examples move accuracy in steps of a point. Chosen on the dev split
   * (docs/results/vote-rule-selection.md). @default 'logLikelihood'
   */
  judge: z.enum(['accuracy', 'logLikelihood']).default('logLikelihood'),
  /** Share of train held out as the dev split when the folder has no dev.jsonl (seed 0). @default 0.1 */
  devFraction: z.number().min(0).lt(1).default(0.1),
  /** Use only this many training examples (a fixed subset, taken after the dev split), for quick runs and tests. */
  trainLimit: z.number().int().positive().optional(),
  /** Score on only this many test examples (a fixed subset), for quick runs and tests. */
  testLimit: z.number().int().positive().optional()
}).strict()

export const NerConfig = z.object({
  kind: z.literal('ner'),
  /** Folder with train.conll / test.conll (token<TAB>BIO tag). @default the bundled BC5CDR */
  data: z.string().default(bundled('bc5cdr')),
  // Features, buckets, batch and rate chosen on BC5CDR's dev split: docs/results/ner-features.md.
  /** Hashed window-feature buckets: 2^20 gained 0.7 centralised dev F1 over 2^18 with the CRF (ner-crf.md), at 1.7× the time. @default 1048576 */
  features: z.number().int().min(16).max(1 << 20).default(1 << 20),
  /** Sentences before a token's own whose abbreviation definitions its features see. @default 10 */
  context: z.number().int().min(0).max(1000).default(10),
  hidden: z.number().int().min(0).max(4096).default(0),
  /** Score each sentence's tags jointly with a linear-chain CRF; false: per-token softmax, decoded as valid BIO. @default true */
  crf: z.boolean().default(true),
  epochs: z.number().int().min(1).max(100).default(2),
  /** Tokens per batch (whole sentences with the CRF). @default 512 */
  batchSize: z.number().int().min(1).max(4096).default(512),
  learningRate: z.number().positive().max(10).default(0.05),
  valFraction: z.number().gt(0).lt(1).default(0.15),
  /**
   * How peers judge an update on their validation sentences: `logLikelihood`, the mean
   * log-probability per token of the gold tags (tolerance below), or `entityF1` (tolerance
   * 0.01). On dev the likelihood rejected exactly the hostile agent's updates and no honest
   * one, where entity F1 on ~100 sentences rejected 12–28% of honest updates and let a
   * label-flipper through (docs/results/ner-crf.md). @default 'logLikelihood'
   */
  judge: z.enum(['entityF1', 'logLikelihood']).default('logLikelihood'),
  /** How much a `logLikelihood` judge lets an update lower it, in nats per token. @default 0.01 */
  tolerance: z.number().min(0).default(0.01),
  /** Use only this many training sentences (a fixed subset). */
  trainLimit: z.number().int().positive().optional(),
  /** Score on only this many test sentences (a fixed subset). */
  testLimit: z.number().int().positive().optional()
}).strict()

export const QaConfig = z.object({
  kind: z.literal('qa'),
  /** Folder with train.jsonl / test.jsonl ({ question, answer, qtype?, focus? }), optional dev.jsonl. @default the bundled MedQuAD */
  data: z.string().default(bundled('medquad')),
  /** The first this many (13a) tokens of an answer are what the student learns and is scored on. @default 32 */
  answerTokens: z.number().int().min(4).max(512).default(32),
  /** Answer words the student can say (most frequent in train's answers first); others it copies from the question or cannot say. @default 1000 */
  maxWords: z.number().int().min(16).max(50_000).default(1000),
  /** A word must occur this often in train's answers to be in the vocabulary. @default 3 */
  minCount: z.number().int().min(1).default(3),
  /** The most frequent words, never copied from the question. @default 100 */
  common: z.number().int().min(0).default(100),
  /** Hashed context-feature buckets. @default 32768 */
  features: z.number().int().min(16).max(1 << 20).default(32_768),
  hidden: z.number().int().min(0).max(4096).default(64),
  // One epoch at 0.003 per round: chosen on MedQuAD's dev split (centralised, seed 0: dev
  // BLEU 0.117/0.115/0.120 over three rounds, where 0.01 peaked at 0.112 and then overfit).
  epochs: z.number().int().min(1).max(100).default(1),
  batchSize: z.number().int().min(1).max(4096).default(128),
  learningRate: z.number().positive().max(10).default(0.003),
  /**
   * Where the teacher gives its token distributions (gguf), the weight of that distribution
   * in each answer word's target, the rest on the word it said: the loss gains kl × KL(teacher
   * ‖ student). On dev, from Gemma 3 270M: 0.25 and 0.5 both lift the held-out likelihood of the
   * teacher's answers by ~0.2 nats per token over 0 (docs/results/qa-kl.md). @default 0.5
   */
  kl: z.number().min(0).max(1).default(0.5),
  valFraction: z.number().gt(0).lt(1).default(0.15),
  /** Share of train's foci held out as the dev split when the folder has no dev.jsonl (seed 0). @default 0.1 */
  devFraction: z.number().min(0).lt(1).default(0.1),
  /** Use only this many training pairs (a fixed subset). */
  trainLimit: z.number().int().positive().optional(),
  /** Score on only this many test (and dev) questions (a fixed subset). */
  testLimit: z.number().int().positive().optional()
}).strict()

export const TaskConfig = z.discriminatedUnion('kind', [ClassifyConfig, NerConfig, QaConfig])
export type TaskConfig = z.infer<typeof TaskConfig>

export interface TaskOptions {
  logger?: Logger
  /** Where the task's model trains: a TrainPool's `train` puts it on worker threads. @default trainSoftmax, on this thread */
  trainer?: SoftmaxTrainer
}

export async function loadTask (config: TaskConfig, options: TaskOptions = {}): Promise<Task> {
  switch (config.kind) {
    case 'classify': return (await import('./tasks/classify.ts')).createClassifyTask(config, options) as Promise<Task>
    case 'ner': return (await import('./tasks/ner.ts')).createNerTask(config, options) as Promise<Task>
    case 'qa': return (await import('./tasks/qa.ts')).createQaTask(config, options) as Promise<Task>
  }
}
