import { describe, expect, it } from 'vitest'
import { requiredAccepts, requiredOf } from '../../src/core/quorum.ts'
import type { Decision } from '../../src/core/records.ts'
import { termsOf } from '../../src/federation/acceptance-terms.ts'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { errorsFor, inject, smallConfig, tempDir } from './helpers.ts'
import { AcceptanceTerms } from '../../src/core/terms.ts'

describe('a quorum of the members the record has not rejected (excludeRejected)', () => {
  it('counts a share of the peers whose votes count; a count asks all of them where fewer count', () => {
    expect(requiredOf({ kind: 'fraction', fraction: 0.5 }, 4)).toBe(requiredAccepts({ kind: 'fraction', fraction: 0.5 }, 5))
    expect(requiredOf({ kind: 'fraction', fraction: 0.5 }, 2)).toBe(1)
    expect(requiredOf({ kind: 'majority' }, 4)).toBe(requiredAccepts({ kind: 'majority' }, 5))
    expect(requiredOf({ kind: 'count', count: 4 }, 2)).toBe(4)
    expect(termsOf({ acceptance: 'probation', voteScale: 'share', excludeRejected: true }, { tolerance: 0.1 })).toMatchObject({ excludeRejected: true })
    // Off, it stays off the charter: terms written before it existed read the same.
    expect('excludeRejected' in termsOf({ acceptance: 'probation', voteScale: 'share', excludeRejected: false }, { tolerance: 0.1 })).toBe(false)
    expect(AcceptanceTerms.safeParse({ ...termsOf({ acceptance: 'tolerance', voteScale: 'share' }, { tolerance: 0.1 }), excludeRejected: false }).success).toBe(false)
  })

  it('drops two colluders\' votes once their own updates were rejected: an honest update then needs one of the two honest peers, and the audit derives the same', async () => {
    // Two of five collude: they accept each other's updates and reject every other. Quorum 2 of 4.
    const config = smallConfig({ agents: 5, rounds: 2, quorum: { kind: 'fraction', fraction: 0.5 }, acceptance: 'probation', excludeRejected: true, attacks: [{ kind: 'collude', agent: 4 }, { kind: 'collude', agent: 5 }] } as never)
    const sim = await Simulation.create(config, { dir: await tempDir() })
    try {
      await sim.charter()
      await sim.round(1)
      const observer = sim.participants[0] as Participant
      const state = observer.state
      const colluders = new Set(sim.participants.slice(3).map(p => p.did))
      const decisionsOf = (round: number): Array<{ honest: boolean, record: Decision, votes: string[] }> =>
        [...state.proposals.values()].filter(p => p.signed.record.round === round).map(p => ({
          honest: !colluders.has(p.signed.issuer),
          record: p.decision?.record as never,
          votes: [...p.votes.values()].filter(v => colluders.has(v.signed.issuer)).map(v => v.block)
        }))
      // Round 1: nobody has been rejected yet, so every vote counts and 2 of 4 are needed; the colluders' updates fail.
      for (const d of decisionsOf(1)) {
        expect(d.record.required).toBe(2)
        expect(d.votes.every(v => d.record.votes.includes(v))).toBe(true)
        if (!d.honest) expect(d.record.accepted).toBe(false)
      }
      for (const did of colluders) expect(state.memberStanding(did, 2)).toBe('bad')

      // Round 2: before the recorder closes it, it forges a decision that still counts the colluders.
      await sim.propose(2)
      const target = [...state.proposals.values()].find(p => p.signed.record.round === 2 && !colluders.has(p.signed.issuer))
      if (target === undefined) throw new Error('no honest proposal in round 2')
      const derived = state.derive(target.block)
      expect(derived.required).toBe(1)
      const theirs = [...target.votes.values()].filter(v => colluders.has(v.signed.issuer))
      expect(theirs.length).toBe(2)
      expect(theirs.every(v => !v.signed.record.accept)).toBe(true)
      expect(derived.votes.some(v => theirs.some(t => t.block === v))).toBe(false)
      const all = [...target.votes.values()]
      const accepts = all.filter(v => v.signed.record.accept).length
      const recorder = sim.participants.find(p => p.did === state.recorder(2)) as Participant
      const forged = await inject(sim, recorder.identity, {
        type: 'decision', federation: config.federation, round: 2, proposal: target.block, proposer: target.signed.issuer,
        accepted: accepts >= 2, accepts, rejects: all.length - accepts, required: 2, votes: all.map(v => v.block).sort()
      })
      expect(new Set(errorsFor(sim, forged))).toEqual(new Set(['DerivationMismatchError']))

      const report = await sim.closeRound(2)
      for (const d of decisionsOf(2)) {
        // An honest update is judged by the three honest members' votes alone: 1 of its 2 honest peers suffices.
        if (d.honest) expect(d.record).toMatchObject({ required: 1, rejects: expect.any(Number) })
        else expect(d.record.required).toBe(2)
        expect(d.votes.some(v => d.record.votes.includes(v))).toBe(false)
      }
      expect(report.accepts).toBeGreaterThan(0)
      // The audit replays the same count: it refuses the forged decision, as every member did, nothing else, and ends with their model.
      const result = await audit(sim.ledger, sim.store)
      expect(result).toMatchObject({ ok: true, modelHash: report.modelHash })
      expect(result.rejected).toEqual([expect.objectContaining({ block: forged, type: 'decision', issuer: recorder.did, error: expect.objectContaining({ name: 'DerivationMismatchError' }) })])
    } finally {
      await sim.close()
    }
  }, 240_000)
})
