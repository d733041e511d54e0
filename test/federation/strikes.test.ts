import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/core/errors.ts'
import { assertFollowsTerms, termsOf } from '../../src/federation/acceptance-terms.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { standingOf } from '../../src/federation/state.ts'
import { expectAuditClean, smallConfig, tempDir } from './helpers.ts'
import { AcceptanceTerms } from '../../src/core/terms.ts'

describe('strikes: how many rejected updates put a member in bad standing', () => {
  it('is a charter term of the standing rules only, and off the record at one', () => {
    expect(termsOf({ acceptance: 'probation', voteScale: 'share', strikes: 2 }, { tolerance: 0.1 })).toMatchObject({ strikes: 2 })
    // One strike is what charters written before the term mean: the term stays off them.
    expect('strikes' in termsOf({ acceptance: 'probation', voteScale: 'share', strikes: 1 }, { tolerance: 0.1 })).toBe(false)
    expect(AcceptanceTerms.safeParse({ ...termsOf({ acceptance: 'probation', voteScale: 'share' }, { tolerance: 0.1 }), strikes: 1 }).success).toBe(false)
    expect(() => smallConfig({ acceptance: 'marginal', strikes: 2 })).toThrow(ConfigError)
    expect(() => smallConfig({ acceptance: 'probation', strikes: 0 })).toThrow(ConfigError)
    expect(() => smallConfig({ acceptance: 'probation', strikes: 1.5 })).toThrow(ConfigError)
  })

  it('probationOnce: a member refused short of its strikes and never merged is in good standing, not on probation again; a charter term of the probation rule with strikes', () => {
    expect(standingOf({ merged: 0, rejected: 1 }, { strikes: 2 })).toBe('new')
    expect(standingOf({ merged: 0, rejected: 1 }, { strikes: 2, probationOnce: true })).toBe('good')
    fc.assert(fc.property(fc.nat(5), fc.nat(5), fc.integer({ min: 2, max: 6 }), (merged, rejected, strikes) => {
      const once = standingOf({ merged, rejected }, { strikes, probationOnce: true })
      // Bad standing and the newcomer's probation are where they were; only a refusal short of the strikes differs.
      expect(once).toBe(rejected >= strikes ? 'bad' : merged === 0 && rejected === 0 ? 'new' : 'good')
      if (rejected === 0 || merged > 0 || rejected >= strikes) expect(once).toBe(standingOf({ merged, rejected }, { strikes }))
    }), { seed: 30, numRuns: 500 })
    expect(termsOf({ acceptance: 'probation', voteScale: 'share', strikes: 2, probationOnce: true }, { tolerance: 0.1 })).toMatchObject({ strikes: 2, probationOnce: true })
    expect('probationOnce' in termsOf({ acceptance: 'probation', voteScale: 'share', strikes: 2 }, { tolerance: 0.1 })).toBe(false)
    // With one strike a refused member is in bad standing: the term would change nothing, so a charter may not state it.
    expect(() => termsOf({ acceptance: 'probation', voteScale: 'share', probationOnce: true }, { tolerance: 0.1 })).toThrow(/probationOnce.*strikes to 2/)
    expect(() => smallConfig({ acceptance: 'standing', strikes: 2, probationOnce: true } as never)).toThrow(ConfigError)
    expect(AcceptanceTerms.safeParse({ ...termsOf({ acceptance: 'standing', voteScale: 'share', strikes: 2 }, { tolerance: 0.1 }), probationOnce: true }).success).toBe(false)
  })

  it('probationOnce: a voter cannot keep a member refused once on probation; the standing comes from the record', () => {
    const judge = { tolerance: 0.1 }
    const terms = (probationOnce: boolean): AcceptanceTerms => AcceptanceTerms.parse(termsOf({ acceptance: 'probation', voteScale: 'share', strikes: 2, probationGain: 0.02, probationOnce }, judge))
    // Adds to the round's combination (the marginal rule accepts) but gains the voter 0.001 against its own update's 0.5: the probation test refuses.
    const measurement = { before: -1.5, after: -1.499, reference: -1, combined: -1.2, without: -1.3, classes: [{ label: 0, n: 10, combined: -1, without: -1.2 }, { label: 1, n: 10, combined: -1.4, without: -1.4 }] }
    const reject = { type: 'vote', federation: 'f', round: 2, proposal: 'p', accept: false, score: 0.001, rationale: '', measurement } as never
    const refusedOnce = { merged: 0, rejected: 1 }
    expect(() => { assertFollowsTerms(terms(false), reject, 'the vote', standingOf(refusedOnce, terms(false))) }).not.toThrow()
    expect(() => { assertFollowsTerms(terms(true), reject, 'the vote', standingOf(refusedOnce, terms(true))) }).toThrow(/makes the charter's probation rule accept for a proposer in good standing/)
  })

  for (const [strikes, badOnProbation, probationOnce] of [[1, false, false], [2, false, false], [1, true, false], [2, false, true]] as const) {
    const after = strikes === 1 ? 'bad' : probationOnce ? 'good' : 'new'
    it(`with ${strikes} strike${strikes === 1 ? '' : 's'}${badOnProbation ? ' and bad standing on probation' : ''}${probationOnce ? ' and probation once' : ''}, an honest member whose first update colluders rejected is ${{ bad: 'judged by the strict rule', new: 'on probation again', good: 'in good standing' }[after]}; the audit agrees`, async () => {
      // Two of five collude and every peer must accept: in round 1 their rejects sink every honest update.
      const config = smallConfig({ agents: 5, rounds: 2, quorum: { kind: 'count', count: 4 }, acceptance: 'probation', excludeRejected: true, strikes, badOnProbation, probationOnce, attacks: [{ kind: 'collude', agent: 4 }, { kind: 'collude', agent: 5 }] } as never)
      const sim = await Simulation.create(config, { dir: await tempDir() })
      try {
        await sim.charter()
        expect('badOnProbation' in (sim.participants[0]?.state.charter?.record.acceptance ?? {})).toBe(badOnProbation)
        await sim.round(1)
        const state = (sim.participants[0] as Participant).state
        const [honest, , , colluder] = sim.participants.map(p => p.did)
        const round1 = [...state.proposals.values()].filter(p => p.signed.record.round === 1 && p.signed.issuer === honest)
        expect(round1.map(p => p.decision?.record.accepted)).toEqual([false])
        expect(state.memberStanding(honest as string, 2)).toBe(after)
        expect(state.memberStanding(colluder as string, 2)).toBe(after)
        await sim.round(2)
        // A second rejection is a second strike whatever the setting.
        const twice = sim.participants.map(p => p.did).filter(did => [...state.proposals.values()].filter(p => p.signed.issuer === did && p.decision?.record.accepted === false).length >= 2)
        expect(twice).toContain(colluder)
        for (const did of twice) expect(state.memberStanding(did, 3)).toBe('bad')
        // The votes of round 2 were judged by the standing the record gives; the audit replays each one.
        await expectAuditClean(sim)
      } finally {
        await sim.close()
      }
    }, 240_000)
  }
})
