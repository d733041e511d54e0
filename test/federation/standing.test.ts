import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { acceptanceRule, classwiseRule, improveRule, marginalRule, probationRule, standingRule } from '../../src/federation/acceptance.ts'
import { assertFollowsTerms, ruleOf, ruling, termsOf } from '../../src/federation/acceptance-terms.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { smallConfig, tempDir } from './helpers.ts'
import { AcceptanceTerms, type Measurement } from '../../src/core/terms.ts'

/** Two classes of my validation examples: 3 of label 0, 1 of label 2. */
const classes = (zero: number, two: number): Measurement['classes'] => [
  { label: 0, n: 3, combined: -1 + zero, without: -1 },
  { label: 2, n: 1, combined: -2 + two, without: -2 }
]
// label 0 gains 0.2 on 3 of 4 examples, label 2 loses 0.4 on 1: helps 0.15, hurts 0.1 (1.5×), the round's combination +0.05 with it
const flippedShape = { before: -1.5, after: -1.4, combined: -1.25, without: -1.3, classes: classes(0.2, -0.4) }
// label 2 loses 0.2: helps 0.15, hurts 0.05 (3×), +0.1
const honestShape = { before: -1.5, after: -1.4, combined: -1.2, without: -1.3, classes: classes(0.2, -0.2) }
// the round's combination is worse with it: -0.05
const harmfulShape = { before: -1.5, after: -1.4, combined: -1.35, without: -1.3, classes: classes(0.1, -0.5) }

/** The median as the round yardsticks take it, written out again for the properties below. */
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 === 1 ? s[m] as number : ((s[m - 1] as number) + (s[m] as number)) / 2 }

describe('the standing rule', () => {
  const rule = standingRule({ minGain: 0, classRatio: 1.8 })

  it('judges a proposer in good standing by the marginal rule and one in bad standing by the classwise rule', () => {
    expect(rule.needs).toEqual(['combined', 'without', 'classes'])
    expect(rule.decide(flippedShape, 'good')).toEqual({ accept: true, allowance: -0 })
    expect(rule.decide(flippedShape, 'bad').accept).toBe(false)
    expect(rule.decide(honestShape, 'good').accept).toBe(true)
    expect(rule.decide(honestShape, 'bad').accept).toBe(true)
    expect(rule.decide(harmfulShape, 'good').accept).toBe(false)
    expect(rule.decide(harmfulShape, 'bad').accept).toBe(false)
  })

  it('decides nothing without the proposer\'s standing', () => {
    expect(() => rule.decide(flippedShape)).toThrow(/standing rule decides by the proposer's standing/)
  })

  it('is the marginal rule in good standing and the classwise rule in bad, for any measurement', () => {
    const score = fc.double({ min: -20, max: 20, noNaN: true })
    const klass = fc.record({ label: fc.nat(22), n: fc.integer({ min: 1, max: 40 }), combined: score, without: score })
    fc.assert(fc.property(fc.double({ min: 1, max: 5, noNaN: true }), score, score, score, score, fc.array(klass, { minLength: 1, maxLength: 23 }), (classRatio, before, after, combined, without, measured) => {
      const m = { before, after, combined, without, classes: measured }
      const standing = standingRule({ minGain: 0, classRatio })
      expect(standing.decide(m, 'good')).toEqual(marginalRule({ minGain: 0 }).decide(m))
      expect(standing.decide(m, 'bad')).toEqual(classwiseRule({ minGain: 0, classRatio }).decide(m))
    }), { seed: 29, numRuns: 1000 })
  })

  it('is chosen by the run config with the settings chosen on dev, and the charter\'s terms hold a vote to the proposer\'s standing', () => {
    const judge = { tolerance: 0.1 }
    expect(acceptanceRule({ acceptance: 'standing' }, judge).name).toBe('standing')
    const terms = AcceptanceTerms.parse(termsOf({ acceptance: 'standing', voteScale: 'share' }, judge))
    expect(terms).toMatchObject({ rule: 'standing', minGain: 0, classRatio: 1.8 })
    expect(ruleOf(terms).needs).toEqual(['combined', 'without', 'classes'])
    expect(ruling(terms, flippedShape, 'good').accept).toBe(true)
    expect(ruling(terms, flippedShape, 'bad').accept).toBe(false)
    const vote = { type: 'vote', federation: 'f', round: 2, proposal: 'p', accept: true, score: 0.1, rationale: '', measurement: flippedShape } as never
    expect(() => { assertFollowsTerms(terms, vote, 'the vote', 'good') }).not.toThrow()
    expect(() => { assertFollowsTerms(terms, vote, 'the vote', 'bad') }).toThrow(/accepts an update its own signed measurement makes the charter's standing rule reject for a proposer in bad standing/)
    expect(() => { assertFollowsTerms(terms, { ...(vote as object), accept: false } as never, 'the vote', 'bad') }).not.toThrow()
    // the class scores are signed whatever the standing: a vote without them is refused in good standing too
    const { classes: _, ...classless } = flippedShape
    expect(() => { assertFollowsTerms(terms, { ...(vote as object), measurement: classless } as never, 'the vote', 'good') }).toThrow(/lacks classes/)
  })

  it('judges a new proposer as one in good standing', () => {
    for (const m of [flippedShape, honestShape, harmfulShape]) expect(rule.decide(m, 'new')).toEqual(rule.decide(m, 'good'))
  })

  it('cannot be chartered for a judge that does not score class by class', async () => {
    const config = smallConfig({ rounds: 1, acceptance: 'standing', task: { kind: 'classify', trainLimit: 900, testLimit: 400, features: 2048, judge: 'accuracy' } } as never)
    const sim = await Simulation.create(config, { dir: await tempDir() })
    try {
      await expect(sim.charter()).rejects.toMatchObject({ name: 'ConfigError', message: expect.stringMatching(/standing needs a judge that scores class by class/) })
    } finally {
      await sim.close()
    }
  }, 240_000)
})

describe('the probation rule', () => {
  const rule = probationRule({ minGain: 0, classRatio: 1.8, probationGain: 0.1 })
  // my own update gains me 0.3: a newcomer's must gain me 0.03 or more
  const gaining = (gain: number): Measurement => ({ ...flippedShape, reference: flippedShape.before + 0.3, after: flippedShape.before + gain })

  it('holds a new proposer to the improve rule on top of the marginal rule, and is the standing rule once its updates are decided', () => {
    expect(rule.needs).toEqual(['combined', 'without', 'classes', 'reference'])
    // the flipped shape passes the marginal rule; gaining me 0.02 of my 0.3 it fails the probation, 0.05 passes
    expect(rule.decide(gaining(0.02), 'new').accept).toBe(false)
    expect(rule.decide(gaining(0.05), 'new').accept).toBe(true)
    expect(rule.decide(gaining(0.02), 'good').accept).toBe(true)
    expect(rule.decide(gaining(0.05), 'bad').accept).toBe(false)
    expect(rule.decide({ ...harmfulShape, reference: -1.2 }, 'new').accept).toBe(false)
  })

  it('is, for any measurement, the standing rule and for a newcomer also the improve rule', () => {
    const score = fc.double({ min: -20, max: 20, noNaN: true })
    const klass = fc.record({ label: fc.nat(22), n: fc.integer({ min: 1, max: 40 }), combined: score, without: score })
    const standing = fc.constantFrom('new', 'good', 'bad') as fc.Arbitrary<'new' | 'good' | 'bad'>
    fc.assert(fc.property(fc.double({ min: 0, max: 1, noNaN: true }), score, score, score, score, score, fc.array(klass, { minLength: 1, maxLength: 23 }), standing, (probationGain, before, after, reference, combined, without, measured, given) => {
      const m = { before, after, reference, combined, without, classes: measured }
      const standingVerdict = standingRule({ minGain: 0, classRatio: 1.8 }).decide(m, given)
      const expected = given === 'new' ? standingVerdict.accept && improveRule({ minGain: probationGain }).decide(m).accept : standingVerdict.accept
      expect(probationRule({ minGain: 0, classRatio: 1.8, probationGain }).decide(m, given)).toEqual({ accept: expected, allowance: standingVerdict.allowance })
    }), { seed: 31, numRuns: 1000 })
  })

  it('under gainingVouchers, lets only a voter whose own update gains it accept a newcomer', () => {
    const vouched = probationRule({ minGain: 0, classRatio: 1.8, probationGain: 0.1, gainingVouchers: true })
    // Two random-label members: my own update lost me 0.006, the other's gains me 0.009. The improve test's bar is then below zero, so it passes.
    const losing: Measurement = { ...flippedShape, reference: flippedShape.before - 0.006, after: flippedShape.before + 0.009 }
    expect(rule.decide(losing, 'new').accept).toBe(true)
    expect(vouched.decide(losing, 'new').accept).toBe(false)
    // Once the proposer is decided, the vouching test is off; with my own update gaining me, it asks nothing more.
    expect(vouched.decide(losing, 'good').accept).toBe(true)
    expect(vouched.decide(gaining(0.05), 'new').accept).toBe(true)
    // With no update of my own the improve test's bar (do not lower my score) is all.
    const { reference: _, ...unreferenced } = gaining(0.05)
    expect(vouched.decide(unreferenced, 'new').accept).toBe(true)
    const score = fc.double({ min: -20, max: 20, noNaN: true })
    fc.assert(fc.property(score, score, score, score, score, fc.constantFrom('new', 'good', 'bad') as fc.Arbitrary<'new' | 'good' | 'bad'>, (before, after, reference, combined, without, given) => {
      const m = { before, after, reference, combined, without, classes: classes(0.2, -0.2) }
      const plain = rule.decide(m, given)
      expect(vouched.decide(m, given)).toEqual({ accept: plain.accept && (given !== 'new' || reference > before), allowance: plain.allowance })
    }), { seed: 32, numRuns: 1000 })
    const judge = { tolerance: 0.1 }
    const terms = AcceptanceTerms.parse(termsOf({ acceptance: 'probation', voteScale: 'share', gainingVouchers: true }, judge))
    expect(terms).toMatchObject({ gainingVouchers: true })
    expect('gainingVouchers' in termsOf({ acceptance: 'probation', voteScale: 'share', gainingVouchers: false }, judge)).toBe(false)
    const vote = { type: 'vote', federation: 'f', round: 1, proposal: 'p', accept: true, score: 0.1, rationale: '', measurement: losing } as never
    expect(() => { assertFollowsTerms(terms, vote, 'the vote', 'new') }).toThrow(/makes the charter's probation rule reject for a proposer in new standing/)
    expect(() => { assertFollowsTerms(AcceptanceTerms.parse(termsOf({ acceptance: 'probation', voteScale: 'share' }, judge)), vote, 'the vote', 'new') }).not.toThrow()
    expect(() => smallConfig({ acceptance: 'marginal', gainingVouchers: true })).toThrow(/gainingVouchers applies to the probation rule/)
  })

  it('under badOnProbation, holds a member in bad standing to the newcomer\'s test too', () => {
    const strict = probationRule({ minGain: 0, classRatio: 1.8, probationGain: 0.5, gainingVouchers: true, badOnProbation: true })
    const plain = probationRule({ minGain: 0, classRatio: 1.8, probationGain: 0.5, gainingVouchers: true })
    // A member twice rejected on probation, its update trained on half-random tags: its classes pass the classwise test
    // (helps 3× what it hurts), and it gains me 0.1 where my own update gains me 0.3, under half of it.
    const noisy: Measurement = { ...honestShape, reference: honestShape.before + 0.3, after: honestShape.before + 0.1 }
    expect(plain.decide(noisy, 'bad').accept).toBe(true)
    expect(strict.decide(noisy, 'bad').accept).toBe(false)
    expect(strict.decide(noisy, 'new').accept).toBe(false)
    // In good standing nothing more is asked; in bad standing an update gaining me as much as my own passes.
    expect(strict.decide(noisy, 'good').accept).toBe(true)
    expect(strict.decide({ ...noisy, after: noisy.before + 0.3 }, 'bad').accept).toBe(true)
    const score = fc.double({ min: -20, max: 20, noNaN: true })
    fc.assert(fc.property(score, score, score, score, score, fc.constantFrom('new', 'good', 'bad') as fc.Arbitrary<'new' | 'good' | 'bad'>, (before, after, reference, combined, without, given) => {
      const m = { before, after, reference, combined, without, classes: classes(0.2, -0.2) }
      const verdict = plain.decide(m, given)
      // In bad standing: the classwise verdict, the improve test at the probation gain, and a voter whose own update gains it.
      expect(strict.decide(m, given)).toEqual(given === 'bad' ? { accept: verdict.accept && improveRule({ minGain: 0.5 }).decide(m).accept && reference > before, allowance: verdict.allowance } : verdict)
    }), { seed: 33, numRuns: 1000 })
    const judge = { tolerance: 0.1 }
    const terms = AcceptanceTerms.parse(termsOf({ acceptance: 'probation', voteScale: 'share', probationGain: 0.5, badOnProbation: true }, judge))
    expect(terms).toMatchObject({ badOnProbation: true })
    expect('badOnProbation' in termsOf({ acceptance: 'probation', voteScale: 'share', badOnProbation: false }, judge)).toBe(false)
    const vote = { type: 'vote', federation: 'f', round: 3, proposal: 'p', accept: true, score: 0.1, rationale: '', measurement: noisy } as never
    expect(() => { assertFollowsTerms(terms, vote, 'the vote', 'bad') }).toThrow(/makes the charter's probation rule reject for a proposer in bad standing/)
    expect(() => { assertFollowsTerms(AcceptanceTerms.parse(termsOf({ acceptance: 'probation', voteScale: 'share', probationGain: 0.5 }, judge)), vote, 'the vote', 'bad') }).not.toThrow()
    expect(() => smallConfig({ acceptance: 'standing', badOnProbation: true })).toThrow(/badOnProbation applies to the probation rule/)
  })

  it('under minSharpening, refuses a newcomer whose update leaves my model as unsure as half-random labels do', () => {
    const strict = probationRule({ minGain: 0, classRatio: 1.8, probationGain: 0.1, gainingVouchers: true, minSharpening: 0.45 })
    const plain = probationRule({ minGain: 0, classRatio: 1.8, probationGain: 0.1, gainingVouchers: true })
    expect(strict.needs).toContain('entropy')
    expect(plain.needs).not.toContain('entropy')
    // Round 1, an update on half-random labels (classify dev, seed 11): it gains me a quarter of what my own update
    // gains me, over the probation gain, and helps more classes than it hurts; it lowers my model's mean entropy by
    // 0.0027 nats where my own update lowers it by 0.0074 (0.36 of it).
    const noisy: Measurement = { ...honestShape, reference: honestShape.before + 0.4, after: honestShape.before + 0.1, entropy: { before: 3.1, after: 3.1 - 0.0027, reference: 3.1 - 0.0074 } }
    expect(plain.decide(noisy, 'new').accept).toBe(true)
    expect(strict.decide(noisy, 'new').accept).toBe(false)
    // An honest newcomer sharpening it 0.0068 (0.92 of mine) passes; in good standing nothing more is asked.
    expect(strict.decide({ ...noisy, entropy: { before: 3.1, after: 3.1 - 0.0068, reference: 3.1 - 0.0074 } }, 'new').accept).toBe(true)
    expect(strict.decide(noisy, 'good').accept).toBe(true)
    // A voter whose own update does not sharpen its model, or that has none, has no yardstick and does not refuse for it.
    expect(strict.decide({ ...noisy, entropy: { before: 3.1, after: 3.2, reference: 3.15 } }, 'new').accept).toBe(true)
    expect(strict.decide({ ...noisy, entropy: { before: 3.1, after: 3.2 } }, 'new').accept).toBe(true)
    const value = fc.double({ min: -20, max: 20, noNaN: true })
    fc.assert(fc.property(value, value, value, value, value, value, value, fc.constantFrom('new', 'good', 'bad') as fc.Arbitrary<'new' | 'good' | 'bad'>, (before, after, reference, combined, without, e0, e1, given) => {
      const m = { before, after, reference, combined, without, classes: classes(0.2, -0.2), entropy: { before: 3, after: 3 + e0 / 10, reference: 3 + e1 / 10 } }
      const verdict = plain.decide(m, given)
      const own = m.entropy.before - m.entropy.reference
      const sharp = own <= 0 || m.entropy.before - m.entropy.after >= 0.45 * own
      // On probation: everything the plain rule asks, and the sharpening test; otherwise the plain rule's verdict.
      expect(strict.decide(m, given)).toEqual(given === 'new' ? { accept: verdict.accept && sharp, allowance: verdict.allowance } : verdict)
    }), { seed: 34, numRuns: 1000 })
    const judge = { tolerance: 0.1, entropy: async () => 0 }
    const terms = AcceptanceTerms.parse(termsOf({ acceptance: 'probation', voteScale: 'share', minSharpening: 0.45 }, judge))
    expect(terms).toMatchObject({ minSharpening: 0.45 })
    expect('minSharpening' in termsOf({ acceptance: 'probation', voteScale: 'share' }, judge)).toBe(false)
    // The audit holds a vote to it: accepting the noisy newcomer goes against the charter; a vote lacking the entropies is unmeasured.
    const vote = { type: 'vote', federation: 'f', round: 1, proposal: 'p', accept: true, score: 0.1, rationale: '', measurement: noisy } as never
    expect(() => { assertFollowsTerms(terms, vote, 'the vote', 'new') }).toThrow(/makes the charter's probation rule reject for a proposer in new standing/)
    const { entropy: _, ...unmeasured } = noisy
    expect(() => { assertFollowsTerms(terms, { ...(vote as object), measurement: unmeasured } as never, 'the vote', 'new') }).toThrow(/lacks entropy/)
    // Refused for a judge that cannot measure it, and for another rule.
    expect(() => termsOf({ acceptance: 'probation', voteScale: 'share', minSharpening: 0.45 }, { tolerance: 0.1 })).toThrow(/minSharpening needs a judge/)
    expect(() => smallConfig({ acceptance: 'standing', minSharpening: 0.45 })).toThrow(/minSharpening applies to the probation rule/)
  })

  it('under sharpeningYardstick round, measures a newcomer against the round\'s median update, flattening included', () => {
    const own = probationRule({ minGain: 0, classRatio: 1.8, probationGain: 0.1, gainingVouchers: true, minSharpening: 0.6 })
    const round = probationRule({ minGain: 0, classRatio: 1.8, probationGain: 0.1, gainingVouchers: true, minSharpening: 0.6, sharpeningYardstick: 'round' })
    expect(round.needs).toEqual(own.needs)
    const at = (after: number, reference: number | undefined, others: number[]): Measurement => ({ ...honestShape, reference: honestShape.before + 0.4, after: honestShape.before + 0.1, entropy: { before: 3, after: 3 - after, ...(reference === undefined ? {} : { reference: 3 - reference }), round: others.map(e => 3 - e) } })
    // Round 1: my own update sharpens my model by 0.011, the round's others by 0.005, 0.006 and 0.0027 (median 0.0055).
    // An honest newcomer's 0.005 is 0.45 of mine, refused against my own update alone, 0.91 of the round's median.
    expect(own.decide(at(0.005, 0.011, [0.005, 0.006, 0.0027]), 'new').accept).toBe(false)
    expect(round.decide(at(0.005, 0.011, [0.005, 0.006, 0.0027]), 'new').accept).toBe(true)
    // Half-random labels' 0.0027 is 0.49 of it: refused.
    expect(round.decide(at(0.0027, 0.011, [0.005, 0.006, 0.005]), 'new').accept).toBe(false)
    // Round 3: every update flattens my model (median −0.055). My own update is no yardstick; the round's median is:
    // flattening by 0.07 is within 1.4 times it, by 0.12 is not.
    expect(own.decide(at(-0.12, -0.05, [-0.04, -0.06, -0.07]), 'new').accept).toBe(true)
    expect(round.decide(at(-0.07, -0.05, [-0.04, -0.06, -0.12]), 'new').accept).toBe(true)
    expect(round.decide(at(-0.12, -0.05, [-0.04, -0.06, -0.07]), 'new').accept).toBe(false)
    // In good standing nothing more is asked; with nothing measured to compare, nothing is refused.
    expect(round.decide(at(-0.12, -0.05, [-0.04, -0.06, -0.07]), 'good').accept).toBe(true)
    expect(round.decide(at(-0.12, undefined, []), 'new').accept).toBe(true)
    const value = fc.double({ min: -1, max: 1, noNaN: true })
    fc.assert(fc.property(value, fc.option(value, { nil: undefined }), fc.array(value, { maxLength: 6 }), fc.constantFrom('new', 'good', 'bad') as fc.Arbitrary<'new' | 'good' | 'bad'>, (after, reference, others, given) => {
      const m = at(after, reference, others)
      const plain = probationRule({ minGain: 0, classRatio: 1.8, probationGain: 0.1, gainingVouchers: true }).decide(m, given)
      const sharpenings = [...(m.entropy?.reference === undefined ? [] : [3 - m.entropy.reference]), ...(m.entropy?.round ?? []).map(e => 3 - e)]
      const typical = median(sharpenings)
      const sharp = sharpenings.length === 0 || 3 - (m.entropy?.after ?? 3) >= typical - 0.4 * Math.abs(typical)
      expect(round.decide(m, given)).toEqual(given === 'new' ? { accept: plain.accept && sharp, allowance: plain.allowance } : plain)
    }), { seed: 35, numRuns: 1000 })
    // Chartered only beside minSharpening and for probation; the audit holds a vote to it.
    const judge = { tolerance: 0.1, entropy: async () => 0 }
    const terms = AcceptanceTerms.parse(termsOf({ acceptance: 'probation', voteScale: 'share', minSharpening: 0.6, sharpeningYardstick: 'round' }, judge))
    expect(terms).toMatchObject({ minSharpening: 0.6, sharpeningYardstick: 'round' })
    expect(() => termsOf({ acceptance: 'probation', voteScale: 'share', sharpeningYardstick: 'round' }, judge)).toThrow(/minSharpening is not set/)
    expect(() => smallConfig({ acceptance: 'standing', sharpeningYardstick: 'round' } as never)).toThrow(/sharpeningYardstick applies to the probation rule/)
    const vote = { type: 'vote', federation: 'f', round: 3, proposal: 'p', accept: true, score: 0.1, rationale: '', measurement: at(-0.12, -0.05, [-0.04, -0.06, -0.07]) } as never
    expect(() => { assertFollowsTerms(terms, vote, 'the vote', 'new') }).toThrow(/makes the charter's probation rule reject for a proposer in new standing/)
    expect(() => { assertFollowsTerms(AcceptanceTerms.parse(termsOf({ acceptance: 'probation', voteScale: 'share', minSharpening: 0.6 }, judge)), vote, 'the vote', 'new') }).not.toThrow()
  })

  it('under minMovement, refuses a newcomer whose update moves my predictions less than that share of the round\'s median movement', () => {
    const rule = probationRule({ minGain: 0, classRatio: 1.8, probationGain: 0.1, gainingVouchers: true, minMovement: 0.54 })
    expect(rule.needs).toContain('movement')
    const at = (after: number, reference: number | undefined, round: number[]): Measurement => ({ ...honestShape, reference: honestShape.before + 0.4, after: honestShape.before + 0.1, movement: { after, ...(reference === undefined ? {} : { reference }), round } })
    // Round 1 on classify's dev split: my own update moves my predictions by 0.010, the round's others by 0.008, 0.012, 0.004 (median 0.009).
    // Half-random labels' 0.0044 is 0.49 of it: refused; an honest newcomer's 0.0055 (0.61) is not.
    expect(rule.decide(at(0.0044, 0.010, [0.008, 0.012, 0.004]), 'new').accept).toBe(false)
    expect(rule.decide(at(0.0055, 0.010, [0.008, 0.012, 0.004]), 'new').accept).toBe(true)
    // In good standing nothing more is asked; in bad standing only under badOnProbation; with nothing measured to compare, nothing is refused.
    expect(rule.decide(at(0.0044, 0.010, [0.008, 0.012, 0.004]), 'good').accept).toBe(true)
    expect(rule.decide(at(0.0044, undefined, []), 'new').accept).toBe(true)
    const bad = { ...at(0.0044, 0.010, [0.008, 0.012, 0.004]), classes: classes(0.3, -0.1) }
    expect(rule.decide(bad, 'bad').accept).toBe(true)
    expect(probationRule({ minGain: 0, classRatio: 1.8, probationGain: 0.1, gainingVouchers: true, badOnProbation: true, minMovement: 0.54 }).decide(bad, 'bad').accept).toBe(false)
    const value = fc.double({ min: 0, max: 1, noNaN: true })
    fc.assert(fc.property(value, fc.option(value, { nil: undefined }), fc.array(value, { maxLength: 6 }), fc.constantFrom('new', 'good', 'bad') as fc.Arbitrary<'new' | 'good' | 'bad'>, (after, reference, others, given) => {
      const m = at(after, reference, others)
      const plain = probationRule({ minGain: 0, classRatio: 1.8, probationGain: 0.1, gainingVouchers: true }).decide(m, given)
      const moves = [...(reference === undefined ? [] : [reference]), ...others]
      const moved = moves.length === 0 || after >= 0.54 * median(moves)
      expect(rule.decide(m, given)).toEqual(given === 'new' ? { accept: plain.accept && moved, allowance: plain.allowance } : plain)
    }), { seed: 36, numRuns: 1000 })
    // Chartered for probation with a judge that measures it; the audit holds a vote to it.
    const judge = { tolerance: 0.1, movement: async () => 0 }
    const terms = AcceptanceTerms.parse(termsOf({ acceptance: 'probation', voteScale: 'share', minMovement: 0.54 }, judge))
    expect(terms).toMatchObject({ minMovement: 0.54 })
    expect('minMovement' in termsOf({ acceptance: 'probation', voteScale: 'share' }, judge)).toBe(false)
    expect(() => termsOf({ acceptance: 'probation', voteScale: 'share', minMovement: 0.54 }, { tolerance: 0.1 })).toThrow(/minMovement needs a judge/)
    expect(() => smallConfig({ acceptance: 'standing', minMovement: 0.54 } as never)).toThrow(/minMovement applies to the probation rule/)
    expect(() => smallConfig({ acceptance: 'probation', minMovement: 0 } as never)).toThrow()
    const vote = { type: 'vote', federation: 'f', round: 1, proposal: 'p', accept: true, score: 0.1, rationale: '', measurement: at(0.0044, 0.010, [0.008, 0.012, 0.004]) } as never
    expect(() => { assertFollowsTerms(terms, vote, 'the vote', 'new') }).toThrow(/makes the charter's probation rule reject for a proposer in new standing/)
    const { movement: _, ...unmeasured } = at(0.0044, 0.010, [0.008, 0.012, 0.004])
    expect(() => { assertFollowsTerms(terms, { ...(vote as object), measurement: unmeasured } as never, 'the vote', 'new') }).toThrow(/lacks movement/)
  })

  it('is chartered with its probation gain, and the charter\'s terms hold a vote on a newcomer to it', () => {
    const judge = { tolerance: 0.1 }
    const terms = AcceptanceTerms.parse(termsOf({ acceptance: 'probation', voteScale: 'share' }, judge))
    expect(terms).toMatchObject({ rule: 'probation', minGain: -0.1, classRatio: 1.8, probationGain: 0.1 })
    const vote = { type: 'vote', federation: 'f', round: 1, proposal: 'p', accept: true, score: 0.1, rationale: '', measurement: gaining(0.02) } as never
    expect(() => { assertFollowsTerms(terms, vote, 'the vote', 'good') }).not.toThrow()
    expect(() => { assertFollowsTerms(terms, vote, 'the vote', 'new') }).toThrow(/makes the charter's probation rule reject for a proposer in new standing/)
    const { reference: _, ...unreferenced } = gaining(0.02)
    expect(() => { assertFollowsTerms(terms, { ...(vote as object), measurement: unreferenced } as never, 'the vote', 'good') }).toThrow(/lacks reference/)
  })
})
