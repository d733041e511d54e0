import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadClassification } from '../../src/data/classification.ts'
import { fixedSubset } from '../../src/data/partition.ts'
import { loadQa, type QaPair } from '../../src/data/qa.ts'
import { corpusBleu, tokenize13a } from '../../src/metrics/bleu.ts'
import { classificationScores } from '../../src/metrics/classification.ts'
import { entityScores } from '../../src/metrics/entities.ts'
import { createPredictor, PredictorSpec } from '../../src/ml/predictor.ts'
import { loadTask, TaskConfig, type Task } from '../../src/ml/task.ts'
import type { Weights } from '../../src/ml/weights.ts'

/** The task's model after one round of training on all its data. */
async function trained (task: Task, teach = false): Promise<Weights> {
  const [shard] = task.shards(1, { seed: 1, partition: 'iid' })
  if (shard === undefined) throw new Error('no shard')
  const train = teach ? shard.train.map(e => task.teaching?.learn(e, (e as QaPair).answer) ?? e) : shard.train
  return (await task.train(task.initialWeights(1), { ...shard, train }, { seed: 2 })).weights
}

/** The spec as `conclave predict` reads it back from predictor.json. */
const throughFile = (task: Task): PredictorSpec => PredictorSpec.parse(JSON.parse(JSON.stringify(task.predictor)))

describe('a predictor from an exported spec', () => {
  it('classify (hashed features): the same labels, so the same accuracy, as the task', async () => {
    const config = TaskConfig.parse({ kind: 'classify', featurizer: 'hashed', features: 1024, trainLimit: 300, testLimit: 80 })
    const task = await loadTask(config)
    const weights = await trained(task)
    const data = await loadClassification(config.data)
    const test = fixedSubset(data.test, config.testLimit)
    const predictor = await createPredictor(throughFile(task), weights)
    const labels = predictor.predict(test.map(e => ({ text: e.text }))).map(p => data.labels.indexOf((p as { label: string }).label))
    expect(classificationScores(test.map(e => e.label), labels).accuracy).toBe((await task.evaluate(weights, 'test')).metric)
  })

  it('ner: the same entities as the task, reading sentences in order for abbreviations', async () => {
    const data = await mkdtemp(join(tmpdir(), 'conclave-predict-ner-'))
    const sentence = (i: number): string[][] => i % 2 === 0
      ? [['Patients', 'B-Disease'], ['with', 'O'], ['atrial', 'B-Disease'], ['fibrillation', 'I-Disease'], ['(', 'O'], ['AF', 'B-Disease'], [')', 'O'], ['took', 'O'], ['aspirin', 'B-Chemical'], [String(i), 'O']]
      : [['AF', 'B-Disease'], ['recurred', 'O'], ['after', 'O'], ['warfarin', 'B-Chemical'], ['.', 'O']]
    const conll = (n: number): string => Array.from({ length: n }, (_, i) => sentence(i).map(t => t.join('\t')).join('\n') + '\n\n').join('')
    await writeFile(join(data, 'train.conll'), conll(40))
    await writeFile(join(data, 'test.conll'), conll(12))
    const task = await loadTask(TaskConfig.parse({ kind: 'ner', data, features: 2048, context: 1 }))
    const weights = await trained(task)
    const gold = Array.from({ length: 12 }, (_, i) => sentence(i))
    const predictor = await createPredictor(throughFile(task), weights)
    const tags = predictor.predict(gold.map(s => ({ tokens: s.map(t => t[0] as string) }))).map(p => (p as { tags: string[] }).tags)
    const scores = entityScores(gold.map(s => s.map(t => t[1] as string)), tags)
    const evaluated = await task.evaluate(weights, 'test')
    expect(scores.f1).toBeGreaterThan(0)
    expect({ f1: scores.f1, precision: scores.precision, recall: scores.recall }).toEqual({ f1: evaluated.metric, precision: evaluated.details.precision, recall: evaluated.details.recall })
  })

  it('qa: the same answers as the task, so the same BLEU', async () => {
    const config = TaskConfig.parse({ kind: 'qa', trainLimit: 120, testLimit: 15, features: 2048, hidden: 16, maxWords: 150 })
    const task = await loadTask(config)
    const weights = await trained(task, true)
    const test = fixedSubset((await loadQa(config.data)).test, config.testLimit)
    const predictor = await createPredictor(throughFile(task), weights)
    const answers = predictor.predict(test.map(p => ({ question: p.question }))).map(p => (p as { answer: string }).answer)
    expect(answers).toEqual(await task.answer?.(weights, test.map(p => p.question)))
    expect(answers.filter(a => a !== '').length).toBeGreaterThan(0)
    const references = test.map(p => tokenize13a(p.answer).slice(0, 32).join(' '))
    expect(corpusBleu(answers, references).bleu).toBe((await task.evaluate(weights, 'test')).metric)
  })

  it('refuses weights that are not the model the spec describes', async () => {
    const spec = PredictorSpec.parse({ kind: 'classify', labels: ['a', 'b'], hidden: 0, featurizer: { kind: 'hashed', features: 64 } })
    const other = PredictorSpec.parse({ ...spec, labels: ['a', 'b', 'c'] })
    const task = await loadTask(TaskConfig.parse({ kind: 'classify', featurizer: 'hashed', features: 64, hidden: 0, trainLimit: 50, testLimit: 10 }))
    await expect(createPredictor(other, task.initialWeights(1))).rejects.toMatchObject({ name: 'InvalidWeightsError' })
  })
})
