import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/core/errors.ts'
import { AcceptanceTerms, termsOf } from '../../src/federation/acceptance-terms.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { expectAuditClean, smallConfig, tempDir } from './helpers.ts'

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

  for (const [strikes, badOnProbation] of [[1, false], [2, false], [1, true]] as const) {
    it(`with ${strikes} strike${strikes === 1 ? '' : 's'}${badOnProbation ? ' and bad standing on probation' : ''}, an honest member whose first update colluders rejected is ${strikes === 1 ? 'judged by the strict rule' : 'on probation again'}; the audit agrees`, async () => {
      // Two of five collude and every peer must accept: in round 1 their rejects sink every honest update.
      const config = smallConfig({ agents: 5, rounds: 2, quorum: { kind: 'count', count: 4 }, acceptance: 'probation', excludeRejected: true, strikes, badOnProbation, attacks: [{ kind: 'collude', agent: 4 }, { kind: 'collude', agent: 5 }] } as never)
      const sim = await Simulation.create(config, { dir: await tempDir() })
      try {
        await sim.charter()
        expect('badOnProbation' in (sim.participants[0]?.state.charter?.record.acceptance ?? {})).toBe(badOnProbation)
        await sim.round(1)
        const state = (sim.participants[0] as Participant).state
        const [honest, , , colluder] = sim.participants.map(p => p.did)
        const round1 = [...state.proposals.values()].filter(p => p.signed.record.round === 1 && p.signed.issuer === honest)
        expect(round1.map(p => p.decision?.record.accepted)).toEqual([false])
        expect(state.memberStanding(honest as string, 2)).toBe(strikes === 1 ? 'bad' : 'new')
        expect(state.memberStanding(colluder as string, 2)).toBe(strikes === 1 ? 'bad' : 'new')
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
