import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadQa } from '../../src/data/qa.ts'
import { tokenize13a } from '../../src/metrics/bleu.ts'
import * as tf from '@tensorflow/tfjs'
import { initBackend } from '../../src/ml/backend.ts'
import { answerRows, classCount, COPY_SLOTS, EOS, fitVocabulary, greedyDecode, readQuestion, softTargets, UNK } from '../../src/ml/qa-student.ts'
import { initSoftmax, softmaxLogits, trainSoftmax } from '../../src/ml/sparse-softmax.ts'
import { loadTask, TaskConfig, type Task } from '../../src/ml/task.ts'
import type { QaExample } from '../../src/ml/tasks/qa.ts'
import { applyDelta, delta, weightsSha256 } from '../../src/ml/weights.ts'

const config = TaskConfig.parse({ kind: 'qa', trainLimit: 300, testLimit: 60, features: 4096, hidden: 32, maxWords: 300, epochs: 2, learningRate: 0.01 })
const FIRST_WORD = 2 + COPY_SLOTS

describe('QA student', () => {
  const vocabulary = fitVocabulary([['the', 'disease', 'is', 'rare', '.'], ['the', 'disease', 'is', 'common', '.'], ['the', 'cause', '.']], { maxWords: 10, minCount: 2, common: 1 })

  it('keeps words seen often enough, most frequent first, and never copies the commonest', () => {
    expect(vocabulary.words).toEqual(['.', 'the', 'disease', 'is'])
    expect(vocabulary.common).toEqual(new Set(['.']))
    expect(classCount(vocabulary)).toBe(FIRST_WORD + 4)
  })

  it('learns to copy question words (so it can name what was asked about), to say vocabulary words, and to stop', () => {
    const q = readQuestion('What is Gaucher disease ?')
    expect(q.head).toBe('what is gaucher')
    const { x, y } = answerRows(vocabulary, q, ['Gaucher', 'disease', 'is', 'rare', '.'], 32, 1024)
    // "Gaucher" and "disease" are copied from question positions 2 and 3; "is" too (position 1);
    // "rare" is neither in the question nor in the vocabulary; "." is common, so said, not copied.
    expect(y).toEqual([2 + 2, 2 + 3, 2 + 1, UNK, FIRST_WORD + 0, EOS])
    expect(x).toHaveLength(6)
    // Cut at maxTokens: no EOS, because the answer goes on.
    expect(answerRows(vocabulary, q, ['Gaucher', 'disease', 'is', 'rare', '.'], 3, 1024).y).toEqual([4, 5, 3])
  })

  it('reads a teacher\'s token distributions as soft targets over its classes, where a word is exactly one teacher token', () => {
    const q = readQuestion('What is Gaucher disease ?')
    // The teacher said "Gaucher disease is rare." in five tokens, the generated one first in each list.
    const topK: Array<Array<[string, number]>> = [
      [['Gauch', Math.log(0.9)], ['The', Math.log(0.1)]],
      [['er', Math.log(1)]],
      [[' disease', Math.log(0.6)], [' is', Math.log(0.2)], [' syndrome', Math.log(0.2)]],
      [[' is', Math.log(0.5)], [' the', Math.log(0.3)], [' disease', Math.log(0.1)], [' isn', Math.log(0.1)]],
      [[' rare', Math.log(0.8)], [' common', Math.log(0.1)], [' .', Math.log(0.1)]],
      [['.', Math.log(0.97)], ['!', Math.log(0.03)]]
    ]
    const soft = softTargets(vocabulary, q, ['Gaucher', 'disease', 'is', 'rare', '.'], topK, { maxTokens: 32 })
    // "Gaucher" spans two teacher tokens: no soft target.
    expect(soft[0]).toBeUndefined()
    // "disease" (a copy of question position 3) 0.6, "is" (a copy of position 1) 0.2; "syndrome" is no class.
    expect(soft[1]).toEqual([[2 + 3, 0.6 / 0.8], [2 + 1, 0.2 / 0.8]])
    // "is" 0.5, "the" 0.3, "disease" 0.1 (a copy); "isn" names no class.
    expect(soft[2]?.map(([c, p]) => [c, Number(p.toFixed(4))])).toEqual([[2 + 1, 0.5556], [FIRST_WORD + 1, 0.3333], [2 + 3, 0.1111]])
    // "rare" is not in the vocabulary, nor in the question: only "." (0.1) names a class, at the floor's edge.
    expect(soft[3]).toEqual([[FIRST_WORD + 0, 1]])
    expect(softTargets(vocabulary, q, ['Gaucher', 'disease', 'is', 'rare', '.'], topK, { maxTokens: 32, minMass: 0.2 })[3]).toBeUndefined()
    expect(soft[4]).toEqual([[FIRST_WORD + 0, 1]])
    // Cut at maxTokens, as the rows are.
    expect(softTargets(vocabulary, q, ['Gaucher', 'disease', 'is'], topK, { maxTokens: 2 })).toHaveLength(2)
  })

  it('trains toward a soft target in proportion to its weight (the KL term)', async () => {
    await initBackend()
    const shape = { features: 4, hidden: 0, classes: 3 }
    const rows = Array.from({ length: 64 }, () => ({ indices: Int32Array.from([0]), values: Float32Array.from([1]) }))
    const labels = rows.map(() => 0)
    const teacher: Array<[number, number]> = [[0, 0.5], [1, 0.5]]
    const probabilities = async (weight: number): Promise<number[]> => {
      const { weights } = await trainSoftmax(shape, initSoftmax(shape, 1), rows, labels, { epochs: 60, batchSize: 16, learningRate: 0.1, seed: 1, soft: { targets: rows.map(() => teacher), weight } })
      return [...tf.tidy(() => tf.softmax(tf.tensor1d(softmaxLogits(shape, weights, rows.slice(0, 1)))).dataSync())]
    }
    const [hard, half, full] = [await probabilities(0), await probabilities(0.5), await probabilities(1)]
    expect(hard[0]).toBeGreaterThan(0.95)
    // Targets (0.75, 0.25, 0) and (0.5, 0.5, 0): the fitted model says them.
    expect(half[0]).toBeCloseTo(0.75, 1)
    expect(half[1]).toBeCloseTo(0.25, 1)
    expect(full[0]).toBeCloseTo(0.5, 1)
    expect(full[1]).toBeCloseTo(0.5, 1)
  })

  it('decodes greedily: copies resolve to the question, never UNK, no repeated trigram, stops at EOS', () => {
    const q = readQuestion('Is Gaucher inherited ?')
    const classes = classCount(vocabulary)
    // A model that always prefers UNK, then copying "Gaucher", then "the", then EOS.
    const prefer = [UNK, 2 + 1, FIRST_WORD + 1, EOS]
    const said = greedyDecode(vocabulary, [q], rows => {
      const out = new Float32Array(rows.length * classes)
      rows.forEach((_, r) => prefer.forEach((c, rank) => { out[r * classes + c] = 10 - rank }))
      return out
    }, { maxTokens: 12, dims: 1024 })
    // UNK is never said. "Gaucher" until "Gaucher Gaucher Gaucher" would repeat, then "the";
    // once both "Gaucher Gaucher Gaucher" and "Gaucher Gaucher the" were said, EOS is left.
    expect(said).toEqual([['Gaucher', 'Gaucher', 'Gaucher', 'the', 'Gaucher', 'Gaucher']])
  })
})

describe('QA data', () => {
  it('names a bad line by file and number, and uses the question as focus when there is none', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-qa-'))
    await writeFile(join(dir, 'train.jsonl'), '{"question":"What is A?","answer":"A is a.","focus":""}\n{"question":"What is B?","answer":"B is b."}\n')
    await writeFile(join(dir, 'test.jsonl'), '{"question":"What is C?"}\n')
    await expect(loadQa(dir)).rejects.toMatchObject({ name: 'DatasetError', code: 'ERR_DATASET', cause: { issues: [expect.objectContaining({ path: ['answer'] })] } })
    await writeFile(join(dir, 'test.jsonl'), '{"question":"What is C?","answer":"C is c."}\n')
    const data = await loadQa(dir, { devFraction: 0 })
    expect(data.train.map(p => p.focus)).toEqual(['what is a?', 'what is b?'])
  })

  // Found red-teaming: test.jsonl equal to train.jsonl loaded silently, so test BLEU measured memory (classification warned since 4c611ef).
  it('warns once, without failing, how many test questions also appear in train', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-qa-'))
    const train = '{"question":"What is flu?","answer":"A virus."}\n{"question":"What is gout?","answer":"Uric acid."}\n'
    await writeFile(join(dir, 'train.jsonl'), train)
    await writeFile(join(dir, 'test.jsonl'), train + '{"question":"What is ALS?","answer":"A disease."}\n')
    const warnings: Array<[string, object | undefined]> = []
    const logger = { info () {}, warn (message: string, fields?: object) { warnings.push([message, fields]) } }
    expect((await loadQa(dir, { devFraction: 0, logger })).test).toHaveLength(3)
    expect(warnings).toEqual([[expect.stringContaining('test.jsonl'), { file: join(dir, 'test.jsonl'), alsoInTrain: 2, examples: 3 }]])
  })

  it('carves dev from train by whole foci on MedQuAD, so dev never asks about a train focus; no test question is a train one', async () => {
    const warnings: string[] = []
    const data = await loadQa(TaskConfig.parse({ kind: 'qa' }).data as string, { logger: { info () {}, warn (message: string) { warnings.push(message) } } })
    expect(warnings).toEqual([])
    const trainFoci = new Set(data.train.map(p => p.focus))
    expect(data.dev.length).toBeGreaterThan(100)
    expect(data.dev.some(p => trainFoci.has(p.focus))).toBe(false)
  })
})

describe('QA task (MedQuAD, by distillation)', () => {
  const teach = (task: Task<QaExample>, examples: QaExample[]): QaExample[] => examples.map(e => task.teaching?.learn(e, e.answer) as QaExample)

  it('refuses to train or score before a teacher has answered', async () => {
    const task = await loadTask(config) as Task<QaExample>
    const [shard] = task.shards(1, { seed: 1, partition: 'iid' })
    if (shard === undefined) throw new Error('no shard')
    expect(shard.train.every(e => task.teaching?.taught(e) === false)).toBe(true)
    await expect(task.train(task.initialWeights(1), shard, { seed: 1 })).rejects.toMatchObject({ name: 'UntaughtError', code: 'ERR_UNTAUGHT' })
    await expect(task.evaluate(task.initialWeights(1), shard.val)).rejects.toMatchObject({ name: 'UntaughtError', code: 'ERR_UNTAUGHT' })
  })

  it('learns what the teacher said: reproducible, better BLEU than untrained, readable answers', async () => {
    const task = await loadTask(config) as Task<QaExample>
    const [raw] = task.shards(1, { seed: 1, partition: 'iid' })
    if (raw === undefined) throw new Error('no shard')
    const shard = { train: teach(task, raw.train), val: teach(task, raw.val) }
    const base = task.initialWeights(1)
    const a = await task.train(base, shard, { seed: 3 })
    expect(weightsSha256((await task.train(base, shard, { seed: 3 })).weights)).toBe(weightsSha256(a.weights))
    expect(a.numSamples).toBe(shard.train.length)
    const before = await task.evaluate(base, 'test')
    const after = await task.evaluate(a.weights, 'test')
    expect(after.metricName).toBe('bleu')
    expect(after.metric).toBeGreaterThan(before.metric)
    expect(after.details).toMatchObject({ questions: 60, refLength: expect.any(Number) })
    const [answer] = await task.answer?.(a.weights, ['What are the symptoms of Marfan syndrome ?']) ?? []
    expect(tokenize13a(answer ?? '').length).toBeGreaterThan(3)
  })

  it('judges updates by the log-likelihood of the teacher\'s answers: training raises it, the reversed update lowers it', async () => {
    const task = await loadTask(config) as Task<QaExample>
    const [raw] = task.shards(1, { seed: 1, partition: 'iid' })
    if (raw === undefined || task.judge === undefined) throw new Error('no shard or judge')
    const shard = { train: teach(task, raw.train), val: teach(task, raw.val) }
    const base = task.initialWeights(1)
    const trained = (await task.train(base, shard, { seed: 3 })).weights
    const [before, after, reversed] = await Promise.all([base, trained, applyDelta(base, delta(trained, base), -1)].map(w => task.judge?.score(w, shard.val) as Promise<number>)) as [number, number, number]
    expect(task.judge.name).toBe('logLikelihood')
    expect(before).toBeLessThan(0)
    expect(after).toBeGreaterThan(before)
    expect(reversed).toBeLessThan(before)
    await expect(task.judge.score(base, raw.val)).rejects.toMatchObject({ name: 'UntaughtError', code: 'ERR_UNTAUGHT' })
  })

  it('poisons targets: a flip gives every answered question another question\'s answer', async () => {
    const task = await loadTask(config) as Task<QaExample>
    const [raw] = task.shards(1, { seed: 1, partition: 'iid' })
    const taught = teach(task, raw?.train ?? [])
    const flipped = task.poison(taught, { kind: 'flip', rate: 1, seed: 1 })
    expect(flipped.filter((e, i) => e.target !== taught[i]?.target).length).toBe(taught.length)
    const noisy = task.poison(taught, { kind: 'noise', rate: 0.5, seed: 1 })
    const changed = noisy.filter((e, i) => e.target !== taught[i]?.target).length
    expect(changed).toBeGreaterThan(taught.length * 0.3)
    expect(changed).toBeLessThan(taught.length * 0.7)
  })
})
