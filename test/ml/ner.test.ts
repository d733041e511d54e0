import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { abbreviations } from '../../src/data/abbreviations.ts'
import { tokenFeatures } from '../../src/data/token-features.ts'
import { loadTask, TaskConfig } from '../../src/ml/task.ts'
import { iob2 } from '../../src/ml/tasks/ner.ts'
import { applyDelta, delta, weightsSha256, type Weights } from '../../src/ml/weights.ts'

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

  it('reads tags as IOB2, as seqeval does: an I- that continues nothing begins an entity', () => {
    expect(iob2(['I-Disease', 'I-Disease', 'O', 'I-Chemical', 'B-Disease', 'I-Chemical', 'I-Chemical'])).toEqual(['B-Disease', 'I-Disease', 'O', 'B-Chemical', 'B-Disease', 'B-Chemical', 'I-Chemical'])
    expect(iob2([])).toEqual([])
  })

  it('reads a file that starts entities with I- (IOB1), and refuses a test tag train.conll lacks, naming file and tag', async () => {
    const data = await mkdtemp(join(tmpdir(), 'conclave-ner-tags-'))
    // no B-Disease anywhere: IOB2 reading makes the first I-Disease one, so the tag set has it
    await writeFile(join(data, 'train.conll'), 'Aspirin\tB-Chemical\nsalt\tI-Chemical\ncaused\tO\nulcer\tI-Disease\n\n')
    const load = async (test: string): Promise<Awaited<ReturnType<typeof loadTask>>> => {
      await writeFile(join(data, 'test.conll'), test)
      return loadTask(TaskConfig.parse({ kind: 'ner', data, features: 256 }))
    }
    expect((await load('ulcer\tI-Disease\n\n')).initialWeights(1).get('crf.start')?.shape).toEqual([5])
    await expect(load('Aspirin\tB-Drug\n\n')).rejects.toMatchObject({ name: 'DatasetError', code: 'ERR_DATASET' })
    await expect(load('ulcer\tB-Disease\nsores\tI-Disease\nand\tO\nsalt\tI-Salt\n\n')).rejects.toMatchObject({ name: 'DatasetError', code: 'ERR_DATASET' })
  })

  it('warns, in one line and without failing, how many test sentences have a token sequence also in train', async () => {
    const data = await mkdtemp(join(tmpdir(), 'conclave-ner-overlap-'))
    await writeFile(join(data, 'train.conll'), 'Aspirin\tB-Chemical\ncaused\tO\nulcer\tB-Disease\n\nNo\tO\neffect\tO\n\n')
    // The same tokens count whatever their tags: test scores then measure memory.
    await writeFile(join(data, 'test.conll'), 'No\tO\neffect\tO\n\nAspirin\tO\ncaused\tO\nulcer\tO\n\nAspirin\tB-Chemical\ncaused\tO\nsores\tO\n\n')
    const warnings: Array<[string, object | undefined]> = []
    const logger = { info () {}, warn (message: string, fields?: object) { warnings.push([message, fields]) } }
    await loadTask(TaskConfig.parse({ kind: 'ner', data, features: 256 }), { logger })
    expect(warnings).toEqual([[expect.stringMatching(/test\.conll.*train\.conll/), { file: join(data, 'test.conll'), alsoInTrain: 2, examples: 3 }]])
    await writeFile(join(data, 'test.conll'), 'Aspirin\tB-Chemical\ncaused\tO\nsores\tO\n\n')
    warnings.length = 0
    await loadTask(TaskConfig.parse({ kind: 'ner', data, features: 256 }), { logger })
    expect(warnings).toEqual([])
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
    // The CRF learnt (scores are [previous][current], tags sorted: B-Chemical B-Disease I-Chemical I-Disease O)
    // that a disease's beginning is followed by its inside more readily than by another disease.
    const transitions = a.weights.get('crf.transitions')?.data ?? new Float32Array()
    expect(transitions[1 * 5 + 3]).toBeGreaterThan(transitions[1 * 5 + 1] as number)
  })

  it('judges by the log-likelihood of the gold tags: higher after training, far lower for a reversed update', async () => {
    const task = await loadTask(config)
    expect((await loadTask(TaskConfig.parse({ ...config, judge: 'entityF1' }))).judge).toBeUndefined() // scored by evaluate's metric
    const [shard] = task.shards(1, { seed: 1, partition: 'iid' })
    if (shard === undefined || task.judge === undefined) throw new Error('no shard or judge')
    const base = task.initialWeights(1)
    const trained = (await task.train(base, shard, { seed: 3 })).weights
    const reversed = applyDelta(base, delta(trained, base), -1)
    const [before, after, harmed] = await Promise.all([base, trained, reversed].map(async w => task.judge?.score(w, shard.val) as Promise<number>))
    expect(after).toBeLessThan(0)
    expect(after).toBeGreaterThan(before as number)
    expect(harmed).toBeLessThan((before as number) - 0.1)
    expect(task.judge.tolerance).toBe(0.01)
  })

  it('scores sentence class by class (its first entity\'s tag): the classes\' means weighted by their tokens are the score, with the CRF and without', async () => {
    for (const crf of [true, false]) {
      const task = await loadTask(TaskConfig.parse({ ...config, crf }))
      const [shard] = task.shards(1, { seed: 1, partition: 'iid' })
      if (shard === undefined || task.judge?.byClass === undefined) throw new Error('no shard or class scores')
      const trained = (await task.train(task.initialWeights(1), shard, { seed: 3 })).weights
      const val = shard.val as Array<{ tokens: string[], tags: string[] }>
      const classes = await task.judge.byClass(trained, val)
      const tokens = val.reduce((n, s) => n + s.tokens.length, 0)
      expect(classes.reduce((n, c) => n + c.n, 0)).toBe(tokens)
      expect(classes.reduce((sum, c) => sum + c.n * c.mean, 0) / tokens).toBeCloseTo(await task.judge.score(trained, val), 10)
      // sentences without an entity are class 0; every other class is a B- tag's
      expect(classes.map(c => c.label)).toContain(0)
      expect(classes.length).toBeGreaterThan(2)
      // one sentence alone is its class
      const one = val.find(s => s.tags.some(t => t !== 'O'))
      if (one === undefined) throw new Error('no sentence with an entity')
      const [only] = await task.judge.byClass(trained, [one])
      expect(only?.n).toBe(one.tokens.length)
      expect(only?.mean).toBeCloseTo(await task.judge.score(trained, [one]), 10)
    }
  })

  it('measures how unsure the model is of its tags: surer after training on true tags than on half-random ones, with the CRF and without', async () => {
    for (const crf of [true, false]) {
      const task = await loadTask(TaskConfig.parse({ ...config, crf }))
      const [shard] = task.shards(1, { seed: 1, partition: 'iid' })
      if (shard === undefined || task.judge?.entropy === undefined) throw new Error('no shard or entropy')
      const base = task.initialWeights(1)
      const noisy = task.poison(shard.train, { kind: 'noise', rate: 0.5, seed: 2 })
      const taught = async (train: typeof noisy): Promise<Weights> => (await task.train(base, { ...shard, train }, { seed: 3 })).weights
      const honest = await taught(shard.train)
      const measure = task.judge.entropy
      const [untrained, sure, unsure] = await Promise.all([base, honest, await taught(noisy)].map(async w => measure(w, shard.val)))
      expect(sure).toBeLessThan(unsure as number)
      expect(sure).toBeLessThan(untrained as number)
      // Never more than a uniform choice among the five tags, never below 0.
      for (const h of [untrained, sure, unsure]) { expect(h).toBeGreaterThan(0); expect(h).toBeLessThanOrEqual(Math.log(5)) }
      // The score asked first reuses the forward pass; the entropy is the same asked alone.
      await task.judge.score(honest, shard.val)
      expect(await task.judge.entropy(honest, shard.val)).toBe(sure)
      expect(await task.judge.entropy(honest, [])).toBe(0)
    }
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
    // Still valid BIO, so the CRF trains on them; random noise too.
    const noisy = task.poison(shard?.train ?? [], { kind: 'noise', rate: 0.5, seed: 2 }) as Array<{ tags: string[] }>
    expect([...flipped, ...noisy].every(s => iob2(s.tags).join() === s.tags.join())).toBe(true)
    await task.train(task.initialWeights(1), { train: noisy, val: [] } as unknown as NonNullable<typeof shard>, { seed: 1 })
  })
})
