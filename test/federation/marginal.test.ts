import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { acceptanceRule, marginalRule } from '../../src/federation/acceptance.ts'
import { assertFollowsTerms, ruleOf, termsOf } from '../../src/federation/acceptance-terms.ts'
import type { Evaluation } from '../../src/federation/participant.ts'
import { forgedMeasurement, littleIsEnough, minMax } from '../../src/federation/attacks.ts'
import { fetchModel } from '../../src/federation/content.ts'
import type { Weights } from '../../src/ml/weights.ts'
import { audit } from '../../src/federation/audit.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { smallConfig, tempDir } from './helpers.ts'
import { AcceptanceTerms } from '../../src/core/terms.ts'

describe('the marginal rule', () => {
  it('accepts an update the round\'s combined update is better with than without, by minGain of what the combination gains', () => {
    const rule = marginalRule({ minGain: 0.25 })
    expect(rule.needs).toEqual(['combined', 'without'])
    // the combination gains 0.4; without this update it gains 0.2: this one adds 0.2 ≥ 0.25 × 0.4
    const verdict = rule.decide({ before: -1, after: -0.9, combined: -0.6, without: -0.8 })
    expect(verdict.accept).toBe(true)
    expect(verdict.allowance).toBeCloseTo(-0.1, 12)
    // adds 0.05 < 0.1
    expect(rule.decide({ before: -1, after: -0.9, combined: -0.6, without: -0.65 }).accept).toBe(false)
    // gains alone (after > before) but the combination is better without it: a label-flipped update among honest ones
    expect(rule.decide({ before: -1, after: -0.95, combined: -0.7, without: -0.6 }).accept).toBe(false)
    // lowers the score alone (a non-IID honest update) yet adds to the combination
    expect(marginalRule({ minGain: 0 }).decide({ before: -1, after: -1.05, combined: -0.7, without: -0.75 }).accept).toBe(true)
    // a negative minGain is a slack: the update may cost a share of what the combination gains (here 0.3; it costs 0.02)
    expect(marginalRule({ minGain: 0 }).decide({ before: -1, after: -1.05, combined: -0.7, without: -0.68 }).accept).toBe(false)
    expect(marginalRule({ minGain: -0.1 }).decide({ before: -1, after: -1.05, combined: -0.7, without: -0.68 }).accept).toBe(true)
    expect(marginalRule({ minGain: -0.05 }).decide({ before: -1, after: -1.05, combined: -0.7, without: -0.68 }).accept).toBe(false)
    // a combination that loses asks no gain: not making it worse is enough
    expect(rule.decide({ before: -1, after: -1, combined: -1.2, without: -1.2 })).toEqual({ accept: true, allowance: -0 })
  })

  it('accepts exactly when combined − without ≥ minGain × max(0, combined − before)', () => {
    const score = fc.double({ min: -50, max: 50, noNaN: true })
    fc.assert(fc.property(fc.double({ min: -1, max: 1, noNaN: true }), score, score, score, score, (minGain, before, after, combined, without) => {
      const verdict = marginalRule({ minGain }).decide({ before, after, combined, without })
      expect(verdict.accept).toBe(combined - without >= minGain * Math.max(0, combined - before))
      // what the update does alone never decides
      expect(marginalRule({ minGain }).decide({ before, after: after + 1, combined, without }).accept).toBe(verdict.accept)
    }), { seed: 21, numRuns: 2000 })
  })

  it('is chosen by the run config and written into the charter\'s terms, which decide a signed measurement by it', () => {
    const judge = { tolerance: 0.1 }
    expect(acceptanceRule({ acceptance: 'marginal' }, judge).name).toBe('marginal')
    const terms = AcceptanceTerms.parse(termsOf({ acceptance: 'marginal', minGain: 0.5, voteScale: 'share' }, judge))
    expect(terms.minGain).toBe(0.5)
    expect(ruleOf(terms).needs).toEqual(['combined', 'without'])
    // the combination gains 0.2; this update adds 0.05 < 0.1: reject
    const measurement = { before: -1, after: -0.9, combined: -0.8, without: -0.85 }
    const vote = { type: 'vote', federation: 'f', round: 1, proposal: 'p', accept: true, score: 0.1, rationale: '', measurement } as never
    expect(() => { assertFollowsTerms(terms, vote, 'the vote') }).toThrow(/accepts an update its own signed measurement makes the charter's marginal rule reject/)
    expect(() => { assertFollowsTerms(terms, { ...(vote as object), accept: false } as never, 'the vote') }).not.toThrow()
    expect(() => { assertFollowsTerms(terms, { ...(vote as object), measurement: { before: -1, after: -0.9 } } as never, 'the vote') }).toThrow(/lacks combined, without/)
  })
})

describe('the marginal rule in a run', () => {
  it('judges a round\'s proposals once all are in, each against the same combination, and every peer and the audit accept the votes', async () => {
    const config = smallConfig({ rounds: 1, acceptance: 'marginal', quorum: { kind: 'fraction', fraction: 0.5 } } as never)
    const sim = await Simulation.create(config, { dir: await tempDir() })
    const seen: Array<{ evaluation: Evaluation, proposals: number }> = []
    sim.participants.forEach(p => p.on('conclave:evaluated', e => { seen.push({ evaluation: e, proposals: p.state.rounds.get(1)?.proposals.length ?? 0 }) }))
    try {
      await sim.charter()
      await sim.round(1)
      // 3 members, 2 judges each: judged only once the third proposal was in
      expect(seen.map(s => s.proposals)).toEqual([3, 3, 3, 3, 3, 3])
      for (const { evaluation } of seen) {
        expect(evaluation.measurement?.combined).toBeTypeOf('number')
        expect(evaluation.measurement?.without).toBeTypeOf('number')
      }
      // one voter's two evaluations measure one combination (every update admitted)
      for (const p of sim.participants) {
        const mine = seen.filter(s => s.evaluation.proposer !== p.did && p.evaluation(s.evaluation.proposal) === s.evaluation)
        expect(new Set(mine.map(s => s.evaluation.measurement?.combined)).size).toBe(1)
      }
      // the audit replays every vote and re-decides it from the measurement it signs
      const audited = await audit(sim.ledger, sim.store)
      expect(audited.ok).toBe(true)
      expect(audited.rejected).toEqual([])
    } finally {
      await sim.close()
    }
  }, 240_000)

  it('does not wait for a silent member: the proposal window closes and what came is judged', async () => {
    const config = smallConfig({ rounds: 1, acceptance: 'marginal', quorum: { kind: 'fraction', fraction: 0.5 } } as never)
    const sim = await Simulation.create(config, { dir: await tempDir() })
    const seen: Evaluation[] = []
    sim.participants.forEach(p => p.on('conclave:evaluated', e => { seen.push(e) }))
    try {
      await sim.charter()
      const [a, b, silent] = sim.participants
      await sim.propose(1, [a, b] as never)
      // the third member stays silent: nobody has judged yet
      expect(seen).toEqual([])
      await sim.closeRound(1)
      // each of the two proposals judged by its two peers, the silent member included
      expect(seen.length).toBe(4)
      expect(seen.filter(e => silent !== undefined && silent.evaluation(e.proposal) === e).length).toBe(2)
      // the round closed with a checkpoint
      expect(sim.participants.map(p => p.state.rounds.get(1)?.checkpoint !== undefined)).toEqual([true, true, true])
    } finally {
      await sim.close()
    }
  }, 240_000)
})

describe('a colluder\'s forged measurement', () => {
  it('is decided as its vote says under every rule, so hostile voters\' votes count as cast', () => {
    const judge = { tolerance: 0.1, relativeTolerance: 0.1 }
    // an update that gains nothing alone and lowers the combination, while the voter's own update gains 0.5
    const measured = { before: -1, after: -1.3, initial: -2, reference: -0.5, combined: -0.8, without: -0.6, geometry: { normRatio: 5, cosine: -1, earlierCosine: -1, historyCosine: -1 } }
    for (const acceptance of ['tolerance', 'improve', 'marginal'] as const) {
      const terms = AcceptanceTerms.parse({ ...termsOf({ acceptance, voteScale: 'share' }, judge), robustness: { maxNormRatio: 3, minCosine: 0.03, minHistoryCosine: 0.3, maxEarlierCosine: 0.99 } })
      for (const accept of [true, false]) {
        const vote = { type: 'vote', federation: 'f', round: 1, proposal: 'p', accept, score: 0, rationale: '', measurement: forgedMeasurement(measured, accept) } as never
        expect(() => { assertFollowsTerms(terms, vote, `${acceptance} ${accept}`) }).not.toThrow()
      }
    }
  })
})

describe('a hostile member under the marginal rule', () => {
  /** Round 1's proposed Δw per member, in member order. */
  const proposed = async (attacks: unknown[]): Promise<Weights[]> => {
    const config = smallConfig({ rounds: 1, acceptance: 'marginal', quorum: { kind: 'fraction', fraction: 0.5 }, attacks } as never)
    const sim = await Simulation.create(config, { dir: await tempDir() })
    try {
      await sim.charter()
      await sim.propose(1)
      const state = sim.participants[0]?.state
      return await Promise.all(sim.participants.map(async p => {
        const id = (state?.rounds.get(1)?.proposals ?? []).find(b => state?.proposals.get(b)?.signed.issuer === p.did)
        return await fetchModel(sim.store, state?.proposals.get(id ?? '')?.signed.record.delta as never)
      }))
    } finally {
      await sim.close()
    }
  }

  it('reads the round\'s updates from the store though nobody has judged them yet: ALIE is μ − z·σ of them and its own', async () => {
    const honest = await proposed([])
    const attacked = await proposed([{ kind: 'alie', agent: 3, z: 1 }])
    // the first two members are honest in both runs, and train alike (training is seeded by the round)
    expect(attacked.slice(0, 2)).toEqual(honest.slice(0, 2))
    expect(attacked[2]).toEqual(littleIsEnough([honest[2], honest[0], honest[1]] as Weights[], 1))
    expect(attacked[2]).not.toEqual(honest[2])
  }, 240_000)

  it('min-max builds its update from the same reading: the mean of them and its own, pushed as far as the farthest pair allows', async () => {
    const honest = await proposed([])
    const attacked = await proposed([{ kind: 'min-max', agent: 3 }])
    expect(attacked.slice(0, 2)).toEqual(honest.slice(0, 2))
    expect(attacked[2]).toEqual(minMax([honest[2], honest[0], honest[1]] as Weights[], 'unit'))
    expect(attacked[2]).not.toEqual(honest[2])
  }, 240_000)
})
