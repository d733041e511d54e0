import { describe, expect, it } from 'vitest'
import { abbreviations } from '../../src/data/abbreviations.ts'
import { tokenFeatures } from '../../src/data/token-features.ts'
import { bioDecoder } from '../../src/ml/bio-decode.ts'
import { loadTask, TaskConfig } from '../../src/ml/task.ts'
import { weightsSha256 } from '../../src/ml/weights.ts'

const config = TaskConfig.parse({ kind: 'ner', trainLimit: 400, testLimit: 150, features: 4096, epochs: 2, batchSize: 64, learningRate: 0.02 })

describe('NER task (BC5CDR)', () => {
  it('hashes window features deterministically, normalised', () => {
    const a = tokenFeatures(['Aspirin', 'induced', 'ulcers'], 0, 1024)
    expect(tokenFeatures(['Aspirin', 'induced', 'ulcers'], 0, 1024)).toEqual(a)
    expect(Math.hypot(...a.values)).toBeCloseTo(1, 6)
    expect(tokenFeatures(['aspirin', 'induced', 'ulcers'], 0, 1024)).not.toEqual(a)
  })

  it('lets an abbreviation carry what its long form says, from the sentences before', () => {
    const defined = abbreviations([['Patients', 'with', 'atrial', 'fibrillation', '(', 'AF', ')', 'were', 'treated', '.']])
    expect(defined.get('AF')).toBe('atrial fibrillation')
    expect(abbreviations([['the', 'dose', '(', 'mg', ')']]).size).toBe(0) // no capital: a unit, not an abbreviation
    expect(abbreviations([['in', 'the', 'cortex', '(', 'AF', ')']]).size).toBe(0) // no word starts with its first letter
    const sentence = ['AF', 'recurred', '.']
    expect(tokenFeatures(sentence, 0, 1 << 18, defined)).not.toEqual(tokenFeatures(sentence, 0, 1 << 18))
    expect(tokenFeatures(sentence, 1, 1 << 18, defined)).toEqual(tokenFeatures(sentence, 1, 1 << 18))
  })

  it('decodes valid BIO: no entity starts with I-, none changes type inside', () => {
    const tags = ['B-Chemical', 'B-Disease', 'I-Chemical', 'I-Disease', 'O']
    const decode = bioDecoder(tags)
    // Per-token argmax would say I-Disease, I-Chemical: both invalid starts/continuations.
    const logits = Float32Array.from([
      0, 1, 0, 3, 0,
      0, 0, 2, 1.5, 0
    ])
    expect(decode(logits, 0, 2).map(i => tags[i])).toEqual(['B-Disease', 'I-Disease'])
    expect(decode(Float32Array.from([0, 0, 0, 0, 5]), 0, 1).map(i => tags[i])).toEqual(['O'])
    expect(decode(new Float32Array(0), 0, 0)).toEqual([])
  })

  it('trains reproducibly, finds entities better than the untrained model, and scores with entity F1', async () => {
    const task = await loadTask(config)
    const [shard] = task.shards(1, { seed: 1, partition: 'iid' })
    if (shard === undefined) throw new Error('no shard')
    const base = task.initialWeights(1)
    const a = await task.train(base, shard, { seed: 3 })
    expect(weightsSha256((await task.train(base, shard, { seed: 3 })).weights)).toBe(weightsSha256(a.weights))
    expect(a.numSamples).toBe((shard.train as Array<{ tokens: string[] }>).reduce((n, s) => n + s.tokens.length, 0))
    const before = await task.evaluate(base, 'test')
    const after = await task.evaluate(a.weights, 'test')
    expect(after.metricName).toBe('entityF1')
    expect(after.metric).toBeGreaterThan(before.metric)
    expect(after.metric).toBeGreaterThan(0.15) // 340 training sentences, 2 epochs: a sanity bar, not the task's quality
  })

  it('partitions by sentence, non-IID by first entity type, every part non-empty', async () => {
    const task = await loadTask(config)
    const shards = task.shards(4, { seed: 2, partition: 'dirichlet', alpha: 0.3 })
    expect(shards.every(s => s.train.length + s.val.length > 0)).toBe(true)
    expect(shards.reduce((n, s) => n + s.train.length + s.val.length, 0)).toBe(400)
  })

  it('poisons tags for label-flip attacks', async () => {
    const task = await loadTask(config)
    const [shard] = task.shards(1, { seed: 1, partition: 'iid' })
    const flipped = task.poison(shard?.train ?? [], { kind: 'flip', rate: 1, seed: 1 }) as Array<{ tags: string[] }>
    const original = (shard?.train ?? []) as Array<{ tags: string[] }>
    expect(flipped.every((s, i) => s.tags.every((t, j) => t !== original[i]?.tags[j]))).toBe(true)
  })
})
