import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { acceptanceRule, classEffects, classwiseRule, marginalRule } from '../../src/federation/acceptance.ts'
import { assertFollowsTerms, ruleOf, termsOf } from '../../src/federation/acceptance-terms.ts'
import { forgedMeasurement } from '../../src/federation/attacks.ts'
import { audit } from '../../src/federation/audit.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { initBackend } from '../../src/ml/backend.ts'
import { initSoftmax, softmaxClassLogLikelihoods, softmaxLogLikelihood } from '../../src/ml/sparse-softmax.ts'
import { smallConfig, tempDir } from './helpers.ts'
import { AcceptanceTerms, Measurement } from '../../src/core/terms.ts'

/** Two classes of my validation examples: 3 of label 0, 1 of label 2. */
const classes = (zero: number, two: number): Measurement['classes'] => [
  { label: 0, n: 3, combined: -1 + zero, without: -1 },
  { label: 2, n: 1, combined: -2 + two, without: -2 }
]

describe('the classwise rule', () => {
  it('accepts what the marginal rule accepts only if the classes it helps gain classRatio times what the classes it hurts lose', () => {
    const rule = classwiseRule({ minGain: 0, classRatio: 2 })
    expect(rule.needs).toEqual(['combined', 'without', 'classes'])
    // label 0 gains 0.2 on 3 of 4 examples, label 2 loses 0.2 on 1: helps 0.15, hurts 0.05 (3×), marginal +0.1
    expect(classEffects(classes(0.2, -0.2) ?? [])).toEqual({ helps: expect.closeTo(0.15, 12), hurts: expect.closeTo(0.05, 12) })
    expect(rule.decide({ before: -1.5, after: -1.4, combined: -1.2, without: -1.3, classes: classes(0.2, -0.2) }).accept).toBe(true)
    // label 2 loses 0.4: helps 0.15, hurts 0.1 (1.5×), the marginal still +0.05: a label-flipped update's shape
    expect(rule.decide({ before: -1.5, after: -1.4, combined: -1.25, without: -1.3, classes: classes(0.2, -0.4) }).accept).toBe(false)
    expect(marginalRule({ minGain: 0 }).decide({ before: -1.5, after: -1.4, combined: -1.25, without: -1.3 }).accept).toBe(true)
    // nothing hurt: only the marginal rule decides, as it does when the round's combination is worse with it
    expect(rule.decide({ before: -1.5, after: -1.4, combined: -1.35, without: -1.3, classes: classes(0.1, 0) }).accept).toBe(false)
    expect(rule.decide({ before: -1.5, after: -1.4, combined: -1.25, without: -1.3, classes: classes(0.1, 0) })).toEqual({ accept: true, allowance: -0 })
  })

  it('accepts exactly when the marginal rule does and helps ≥ classRatio × hurts; at classRatio 1 it is the marginal rule', () => {
    const score = fc.double({ min: -20, max: 20, noNaN: true })
    const klass = fc.record({ label: fc.nat(22), n: fc.integer({ min: 1, max: 40 }), combined: score, without: score })
    fc.assert(fc.property(fc.double({ min: 1, max: 5, noNaN: true }), score, score, fc.array(klass, { minLength: 1, maxLength: 23 }), (classRatio, before, offset, measured) => {
      // combined and without as the class scores give them, so the two rules read the same numbers
      const n = measured.reduce((s, c) => s + c.n, 0)
      const mean = (key: 'combined' | 'without'): number => measured.reduce((s, c) => s + c.n * c[key], 0) / n
      const m = { before, after: before + offset, combined: mean('combined'), without: mean('without'), classes: measured }
      const { helps, hurts } = classEffects(measured)
      expect(helps - hurts).toBeCloseTo(m.combined - m.without, 6)
      expect(Math.min(helps, hurts)).toBeGreaterThanOrEqual(0)
      const marginal = marginalRule({ minGain: 0 }).decide(m).accept
      expect(classwiseRule({ minGain: 0, classRatio }).decide(m).accept).toBe(marginal && helps >= classRatio * hurts)
      // helps ≥ hurts is combined ≥ without (up to rounding at the boundary)
      if (Math.abs(helps - hurts) > 1e-9) expect(classwiseRule({ minGain: 0, classRatio: 1 }).decide(m).accept).toBe(marginal)
    }), { seed: 23, numRuns: 2000 })
  })

  it('is chosen by the run config and written into the charter\'s terms, which decide a signed measurement by it', () => {
    const judge = { tolerance: 0.1 }
    expect(acceptanceRule({ acceptance: 'classwise' }, judge).name).toBe('classwise')
    const terms = AcceptanceTerms.parse(termsOf({ acceptance: 'classwise', voteScale: 'share' }, judge))
    expect(terms).toMatchObject({ rule: 'classwise', minGain: 0, classRatio: 1.8 })
    expect(ruleOf(terms).needs).toEqual(['combined', 'without', 'classes'])
    expect(AcceptanceTerms.safeParse({ ...terms, classRatio: 0.5 }).success).toBe(false)
    const measurement = { before: -1.5, after: -1.4, combined: -1.25, without: -1.3, classes: classes(0.2, -0.4) }
    const vote = { type: 'vote', federation: 'f', round: 1, proposal: 'p', accept: true, score: 0.1, rationale: '', measurement } as never
    expect(() => { assertFollowsTerms(terms, vote, 'the vote') }).toThrow(/accepts an update its own signed measurement makes the charter's classwise rule reject/)
    expect(() => { assertFollowsTerms(terms, { ...(vote as object), accept: false } as never, 'the vote') }).not.toThrow()
    const { classes: _, ...classless } = measurement
    expect(() => { assertFollowsTerms(terms, { ...(vote as object), measurement: classless } as never, 'the vote') }).toThrow(/lacks classes/)
  })

  it('a colluder\'s forged accept and reject follow it', () => {
    const terms = AcceptanceTerms.parse(termsOf({ acceptance: 'classwise', voteScale: 'share' }, { tolerance: 0.1 }))
    const measured = { before: -1.5, after: -1.6, combined: -1.4, without: -1.3, classes: classes(-0.1, -0.3) }
    for (const accept of [true, false]) {
      const vote = { type: 'vote', federation: 'f', round: 1, proposal: 'p', accept, score: 0, rationale: '', measurement: forgedMeasurement(measured, accept) } as never
      expect(() => { assertFollowsTerms(terms, vote, String(accept)) }).not.toThrow()
    }
  })

  it('bounds how many classes a vote signs', () => {
    const many = Array.from({ length: 65 }, (_, label) => ({ label, n: 1, combined: 0, without: 0 }))
    expect(Measurement.safeParse({ before: 0, after: 0, classes: many }).success).toBe(false)
    expect(Measurement.safeParse({ before: 0, after: 0, classes: many.slice(0, 64) }).success).toBe(true)
  })
})

describe('class-by-class log-likelihood', () => {
  it('gives each label its examples and mean, which weighted by their number make the whole mean', async () => {
    await initBackend({})
    const shape = { features: 4, hidden: 0, classes: 3 }
    const weights = initSoftmax(shape, 5)
    const row = (i: number) => ({ indices: Int32Array.of(i % 4), values: Float32Array.of(1 + i) })
    const rows = Array.from({ length: 7 }, (_, i) => row(i))
    const labels = [2, 0, 2, 2, 0, 2, 0]
    const byClass = softmaxClassLogLikelihoods(shape, weights, rows, labels)
    expect(byClass.map(c => [c.label, c.n])).toEqual([[0, 3], [2, 4]])
    expect(byClass.reduce((s, c) => s + c.n * c.mean, 0) / rows.length).toBeCloseTo(softmaxLogLikelihood(shape, weights, rows, labels), 6)
    expect(byClass[0]?.mean).toBeCloseTo(softmaxLogLikelihood(shape, weights, [rows[1], rows[4], rows[6]] as never, [0, 0, 0]), 6)
  })
})

describe('the classwise rule in a run', () => {
  it('cannot be chartered for a judge that does not score class by class', async () => {
    const config = smallConfig({ rounds: 1, acceptance: 'classwise', task: { kind: 'classify', trainLimit: 900, testLimit: 400, features: 2048, judge: 'accuracy' } } as never)
    const sim = await Simulation.create(config, { dir: await tempDir() })
    try {
      await expect(sim.charter()).rejects.toMatchObject({ name: 'ConfigError', message: expect.stringMatching(/classwise needs a judge that scores class by class/) })
    } finally {
      await sim.close()
    }
  }, 240_000)


  // NER's classes are sentences by their first entity, each weighing its tokens: its combined score is per token, as `before` is.
  it.each([
    ['classify', { kind: 'classify', trainLimit: 900, testLimit: 400, features: 2048 }],
    ['ner', { kind: 'ner', trainLimit: 400, testLimit: 150, features: 4096, epochs: 2, batchSize: 64, learningRate: 0.02, judge: 'logLikelihood' }]
  ])('%s: signs each class of the voter\'s validation examples with its vote, and the audit decides every vote again', async (_, task) => {
    const config = smallConfig({ rounds: 1, acceptance: 'classwise', quorum: { kind: 'fraction', fraction: 0.5 }, task } as never)
    const sim = await Simulation.create(config, { dir: await tempDir() })
    try {
      await sim.charter()
      await sim.round(1)
      const votes = [...(sim.participants[0]?.state.proposals.values() ?? [])].flatMap(e => [...e.votes.values()].map(v => v.signed.record))
      expect(votes).toHaveLength(6)
      for (const vote of votes) {
        const m = vote.measurement
        if (m === undefined || 'unusable' in m || m.classes === undefined || m.combined === undefined || m.without === undefined) throw new Error('a vote without class scores')
        // the classes are the voter's validation labels, and their weighted means its overall scores
        const n = m.classes.reduce((s, c) => s + c.n, 0)
        expect(m.classes.reduce((s, c) => s + c.n * c.combined, 0) / n).toBeCloseTo(m.combined, 5)
        expect(m.classes.reduce((s, c) => s + c.n * c.without, 0) / n).toBeCloseTo(m.without, 5)
      }
      const audited = await audit(sim.ledger, sim.store)
      expect(audited).toMatchObject({ ok: true, votesReplayed: true, votes: 6, rejected: [] })
    } finally {
      await sim.close()
    }
  }, 240_000)
})
