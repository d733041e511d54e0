import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { acceptanceRule, improveRule, toleranceRule } from '../../src/federation/acceptance.ts'
import { allowedAccepts, assertFollowsTerms, ruleOf, termsOf } from '../../src/federation/acceptance-terms.ts'
import type { Evaluation, Participant } from '../../src/federation/participant.ts'
import type { DriverFactory } from '../../src/federation/driver.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { smallConfig, tempDir } from './helpers.ts'
import { AcceptanceTerms, Measurement } from '../../src/core/terms.ts'

describe('the tolerance rule', () => {
  it('accepts an update that lowers the score by at most the tolerance', () => {
    const rule = toleranceRule({ tolerance: 0.25, relativeTolerance: 0 })
    expect(rule.needs).toEqual([])
    expect(rule.decide({ before: -1, after: -0.5 })).toEqual({ accept: true, allowance: 0.25 })
    expect(rule.decide({ before: -1, after: -1.25 })).toEqual({ accept: true, allowance: 0.25 })
    expect(rule.decide({ before: -1, after: -1.5 })).toEqual({ accept: false, allowance: 0.25 })
    // a score at the initial model changes nothing without a relative tolerance
    expect(rule.decide({ before: -1, after: -1.5, initial: -4 })).toEqual({ accept: false, allowance: 0.25 })
  })

  it('adds the relative tolerance times what the peer gained since the initial model, never less than nothing', () => {
    const rule = toleranceRule({ tolerance: 0.25, relativeTolerance: 0.5 })
    expect(rule.needs).toEqual(['initial'])
    // gained 2 since the initial model: may fall 0.25 + 0.5 × 2
    expect(rule.decide({ before: -1, after: -2.25, initial: -3 })).toEqual({ accept: true, allowance: 1.25 })
    expect(rule.decide({ before: -1, after: -2.5, initial: -3 })).toEqual({ accept: false, allowance: 1.25 })
    // worse than the initial model: nothing gained, nothing more to give
    expect(rule.decide({ before: -3, after: -3.5, initial: -1 })).toEqual({ accept: false, allowance: 0.25 })
    // not measured: the absolute tolerance alone
    expect(rule.decide({ before: -1, after: -1.5 })).toEqual({ accept: false, allowance: 0.25 })
  })

  it('accepts exactly when after − before ≥ −allowance, with allowance ≥ tolerance, and accepts every better update', () => {
    const score = fc.double({ min: -50, max: 50, noNaN: true })
    const share = fc.double({ min: 0, max: 1, noNaN: true })
    fc.assert(fc.property(share, share, score, score, score, (tolerance, relativeTolerance, before, after, initial) => {
      const rule = toleranceRule({ tolerance, relativeTolerance })
      const verdict = rule.decide({ before, after, initial })
      expect(verdict.allowance).toBeGreaterThanOrEqual(tolerance)
      expect(verdict.accept).toBe(after - before >= -verdict.allowance)
      if (after >= before) expect(verdict.accept).toBe(true)
    }), { seed: 18, numRuns: 2000 })
  })

  it('is chosen by the run config, with the task judge filling in unset tolerances', () => {
    const judge = { tolerance: 0.125, relativeTolerance: 0.25 }
    const m = { before: -1, after: -1.25, initial: -2 }
    expect(acceptanceRule({ acceptance: 'tolerance' }, judge).decide(m)).toEqual({ accept: true, allowance: 0.375 })
    expect(acceptanceRule({ acceptance: 'tolerance', tolerance: 0, relativeTolerance: 0 }, judge).decide(m)).toEqual({ accept: false, allowance: 0 })
    expect(acceptanceRule({ acceptance: 'tolerance' }, { tolerance: 0.01 }).needs).toEqual([])
  })

  it('takes a measurement that parses as one, and nothing else', () => {
    expect(Measurement.parse({ before: -1, after: -0.5, initial: -2 })).toEqual({ before: -1, after: -0.5, initial: -2 })
    expect(Measurement.parse({ before: -1, after: -0.5, reference: -0.4 })).toEqual({ before: -1, after: -0.5, reference: -0.4 })
    expect(Measurement.safeParse({ before: -1 }).success).toBe(false)
    expect(Measurement.safeParse({ before: -1, after: Number.NaN }).success).toBe(false)
    expect(Measurement.safeParse({ before: -1, after: 0, surprise: 1 }).success).toBe(false)
  })
})

describe('the improve rule', () => {
  it('accepts an update that gains at least minGain of what my own update gains, and needs my own update\'s score', () => {
    const rule = improveRule({ minGain: 0.25 })
    expect(rule.needs).toEqual(['reference'])
    // my own update gains 0.5: a peer's must gain 0.125
    const verdict = rule.decide({ before: -1, after: -0.8, reference: -0.5 })
    expect(verdict.accept).toBe(true)
    expect(verdict.allowance).toBeCloseTo(-0.125, 12)
    expect(rule.decide({ before: -1, after: -0.9, reference: -0.5 }).accept).toBe(false)
    // a label-flipped update: lowers the score a little, far within the tolerance rule's 0.1
    expect(rule.decide({ before: -1, after: -1.02, reference: -0.5 }).accept).toBe(false)
    // without an update of my own: not lowering my score is enough
    expect(rule.decide({ before: -1, after: -1 })).toEqual({ accept: true, allowance: 0 })
    expect(rule.decide({ before: -1, after: -1.01 }).accept).toBe(false)
    // my own update lowers my score: a peer's may lower it by that share
    expect(rule.decide({ before: -1, after: -1.1, reference: -1.5 }).accept).toBe(true)
    expect(rule.decide({ before: -1, after: -1.2, reference: -1.5 }).accept).toBe(false)
  })

  it('accepts exactly when after − before ≥ minGain × (reference − before), and every update that gains more than mine', () => {
    const score = fc.double({ min: -50, max: 50, noNaN: true })
    fc.assert(fc.property(fc.double({ min: 0, max: 1, noNaN: true }), score, score, score, (minGain, before, after, reference) => {
      const verdict = improveRule({ minGain }).decide({ before, after, reference })
      expect(verdict.accept).toBe(after - before >= -verdict.allowance)
      expect(verdict.allowance).toBe(minGain * (before - reference))
      if (after - before >= Math.max(0, reference - before)) expect(verdict.accept).toBe(true)
    }), { seed: 18, numRuns: 2000 })
  })

  it('is chosen by the run config, minGain 0.1 unless set', () => {
    const judge = { tolerance: 0.125 }
    // my own update gains 0.5; the peer's 0.03
    const m = { before: -1, after: -0.97, reference: -0.5 }
    expect(acceptanceRule({ acceptance: 'improve' }, judge).decide(m).accept).toBe(false)
    expect(acceptanceRule({ acceptance: 'improve', minGain: 0.1 }, judge).decide(m).accept).toBe(false)
    expect(acceptanceRule({ acceptance: 'improve', minGain: 0.05 }, judge).decide(m).accept).toBe(true)
  })
})

describe('how far a peer lets an update lower its judge, in a run', () => {
  it('a relative tolerance lets an update undo that share of what the federation taught the peer since the initial model', async () => {
    // tolerance 0, relative 1: an update passes when it leaves my score at least at the initial model's
    const config = smallConfig({ rounds: 2, tolerance: 0, relativeTolerance: 1 })
    const rule = toleranceRule({ tolerance: 0, relativeTolerance: 1 })
    const sim = await Simulation.create(config, { dir: await tempDir() })
    const seen = sim.participants.map(() => [] as Evaluation[])
    sim.participants.forEach((p, i) => p.on('conclave:evaluated', e => { seen[i]?.push(e) }))
    try {
      await sim.charter()
      await sim.round(1)
      await sim.round(2)
    } finally {
      await sim.close()
    }
    let learnt = 0
    for (const evaluations of seen) {
      const first = evaluations.filter(e => e.round === 1)
      const second = evaluations.filter(e => e.round === 2)
      expect(first.length).toBe(2)
      expect(second.length).toBe(2)
      for (const e of [...first, ...second]) {
        const m = e.measurement as Measurement
        expect(m).toEqual({ before: e.before, after: e.after, initial: expect.any(Number), geometry: expect.any(Object) })
        expect(e.verdict).toEqual(rule.decide(m))
        expect(e.passes).toBe(e.verdict?.accept)
      }
      // round 1 judges against the initial model itself: nothing taught yet, nothing may be undone
      for (const e of first) expect(e.verdict).toEqual({ accept: e.score >= 0, allowance: 0 })
      for (const e of second) {
        const initial = e.measurement?.initial as number
        if (e.before > initial) learnt++
        if (Math.abs(e.after - initial) > 1e-9) expect(e.passes).toBe(e.after > initial)
      }
    }
    // the federation learnt in round 1, so in round 2 some peers had room to give
    expect(learnt).toBeGreaterThan(0)
  })
})

describe('judgement modes: who may decide a vote\'s accept', () => {
  it('rule: the rule\'s answer only; guarded: reject always, accept only what passes; model: either', () => {
    expect([true, false].map(passes => allowedAccepts('rule', passes))).toEqual([[true], [false]])
    expect([true, false].map(passes => allowedAccepts('guarded', passes))).toEqual([[true, false], [false]])
    expect([true, false].map(passes => allowedAccepts('model', passes))).toEqual([[true, false], [true, false]])
  })

  it('the vote step enforces the declared mode and records it with who decided; the charter\'s mode binds every vote', async () => {
    const byHand: DriverFactory = async participant => ({ openRound: async (round) => { await participant.propose(round) }, busy: false, idle: async () => {}, close: async () => {} })
    const sim = await Simulation.create(smallConfig({ rounds: 1, agent: { judgement: 'model' } }), { dir: await tempDir(), driver: byHand })
    try {
      await sim.charter()
      const [a, b, c] = sim.participants as [Participant, Participant, Participant]
      await sim.propose(1, [a])
      const [first] = a.state.rounds.get(1)?.proposals as [string]
      const passes = (await c.evaluate(first)).passes
      // against the rule, under rule and (when it fails) guarded: refused, nothing anchored
      await expect(c.vote(first, !passes, 'I disagree', { judgement: 'rule', decidedBy: 'gguf:x.gguf' })).rejects.toMatchObject({ name: 'VoteAgainstRuleError', code: 'ERR_VOTE_AGAINST_RULE' })
      if (!passes) await expect(c.vote(first, true, 'I disagree', { judgement: 'guarded', decidedBy: 'gguf:x.gguf' })).rejects.toMatchObject({ name: 'VoteAgainstRuleError' })
      expect(c.hasVoted(first)).toBe(false)
      // under model judgement the model's answer stands, and the vote says who gave it under which mode
      await c.vote(first, !passes, 'I disagree', { judgement: 'model', decidedBy: 'gguf:x.gguf' })
      await b.evaluate(first)
      await b.vote(first, (b.evaluation(first) as Evaluation).passes)
      await sim.settle()
      expect(c.myVote(first)).toMatchObject({ accept: !passes, decidedBy: 'gguf:x.gguf', judgement: 'model' })
      expect(b.myVote(first)).toMatchObject({ judgement: 'model' })
      expect(b.myVote(first)).not.toHaveProperty('decidedBy')
      expect(a.state.charter?.record.acceptance?.judgement).toBe('model')
    } finally {
      await sim.close()
    }
  })
})

describe('the improve rule under the charter\'s terms', () => {
  it('writes minGain into the terms (0.1 unless set) and decides a signed measurement by it', () => {
    const judge = { tolerance: 0.1 }
    expect(termsOf({ acceptance: 'improve', voteScale: 'share' }, judge).minGain).toBe(0.1)
    expect(termsOf({ acceptance: 'tolerance', voteScale: 'share' }, judge).minGain).toBeUndefined()
    const terms = AcceptanceTerms.parse(termsOf({ acceptance: 'improve', minGain: 0.5, voteScale: 'share' }, judge))
    expect(ruleOf(terms).needs).toEqual(['reference'])
    // my own update gains 0.2: a peer's must gain 0.1 under minGain 0.5
    const measurement = { before: -1, after: -0.95, reference: -0.8 }
    expect(ruleOf(terms).decide(measurement).accept).toBe(false)
    const vote = { type: 'vote', federation: 'f', round: 1, proposal: 'p', accept: true, score: 0.05, rationale: '', measurement } as never
    expect(() => { assertFollowsTerms(terms, vote, 'the vote') }).toThrow(/reject/)
    expect(() => { assertFollowsTerms(terms, { ...(vote as object), measurement: { before: -1, after: -0.95 } } as never, 'the vote') }).toThrow(/reference/)
  })
})
