import { describe, expect, it } from 'vitest'
import { termsOf } from '../../src/federation/acceptance-terms.ts'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { AcceptanceTerms } from '../../src/core/terms.ts'
import { forgedMeasurement } from '../../src/federation/attacks.ts'
import { chartered, errorsFor, inject } from './helpers.ts'

describe('excludeRejectedInRound: the votes of a member whose update of the same round fails its tally do not count', () => {
  it('is a charter term, off the record when off', () => {
    expect(termsOf({ acceptance: 'probation', voteScale: 'share', excludeRejected: true, excludeRejectedInRound: true }, { tolerance: 0.1 })).toMatchObject({ excludeRejectedInRound: true })
    expect('excludeRejectedInRound' in termsOf({ acceptance: 'probation', voteScale: 'share', excludeRejectedInRound: false }, { tolerance: 0.1 })).toBe(false)
    expect(AcceptanceTerms.safeParse({ ...termsOf({ acceptance: 'probation', voteScale: 'share' }, { tolerance: 0.1 }), excludeRejectedInRound: false }).success).toBe(false)
  })

  for (const inRound of [false, true]) {
    it(`${inRound ? 'with' : 'without'} it, in round 1 two colluders' rejects and one honest peer's false reject ${inRound ? 'no longer sink' : 'sink'} an honest update; the audit agrees`, async () => {
      // Two of five collude (their updates ×5, they accept each other's and reject every other) and
      // the quorum is 2 of 4: an honest update needs both its honest peers, until the colluders' votes drop out.
      const sim = await chartered({ agents: 5, rounds: 1, quorum: { kind: 'fraction', fraction: 0.5 }, acceptance: 'probation', excludeRejected: true, excludeRejectedInRound: inRound, attacks: [{ kind: 'collude', agent: 4 }, { kind: 'collude', agent: 5 }] } as never)
      try {
        await sim.propose(1)
        const members = sim.participants as Participant[]
        const state = (members[0] as Participant).state
        const colluding = (did: string): boolean => did === members[3]?.did || did === members[4]?.did
        const proposals = [...state.proposals.values()].filter(p => p.signed.record.round === 1)
        const target = proposals.find(p => p.signed.issuer === members[0]?.did)
        if (target === undefined) throw new Error('agent-1 did not propose')
        // Its tally reads the round's others: under the term a proposal waits for the round's last window.
        const window = sim.config.windowSeconds + 1
        expect(state.decidableAt(target.block)).toBe((inRound ? Math.max(...proposals.map(p => p.time)) : target.time) + window)
        for (const proposal of proposals) {
          for (const judge of members.filter(m => m.did !== proposal.signed.issuer)) {
            const evaluation = await judge.evaluate(proposal.block)
            // agent-3's false reject of agent-1's update, and every colluder's vote, sign made-up measurements that the rule decides as they say.
            const forged = colluding(judge.did) ? colluding(proposal.signed.issuer) : judge === members[2] && proposal === target ? false : undefined
            if (forged === undefined) {
              expect(evaluation.passes).toBe(!colluding(proposal.signed.issuer))
              await judge.vote(proposal.block, evaluation.passes)
            } else {
              await inject(sim, judge.identity, { type: 'vote', federation: sim.config.federation, round: 1, proposal: proposal.block, accept: forged, score: 0, rationale: 'forged', measurement: forgedMeasurement(evaluation.measurement as never, forged) as never, judgement: 'rule' })
            }
          }
        }
        await sim.settle()
        if (inRound) {
          // A recorder that still counts the colluders' rejects is refused by every member.
          const recorder = members.find(p => p.did === state.recorder(1)) as Participant
          const votes = [...target.votes.values()]
          const forged = await inject(sim, recorder.identity, { type: 'decision', federation: sim.config.federation, round: 1, proposal: target.block, proposer: target.signed.issuer, accepted: false, accepts: 1, rejects: 3, required: 2, votes: votes.map(v => v.block).sort() })
          expect(errorsFor(sim, forged)).toEqual(Array(5).fill('DerivationMismatchError'))
        }
        const report = await sim.closeRound(1)
        const decisions = proposals.map(p => [colluding(p.signed.issuer), p.decision?.record.accepted, p.decision?.record.required])
        // The colluders' updates fail either way; agent-1's is saved by agent-2's accept once their votes drop out.
        expect(decisions.filter(([c]) => c === true).map(([, accepted]) => accepted)).toEqual([false, false])
        expect(target.decision?.record).toMatchObject(inRound ? { accepted: true, required: 1, accepts: 1 } : { accepted: false, required: 2, accepts: 1 })
        const result = await audit(sim.ledger, sim.store)
        expect(result).toMatchObject({ ok: true, modelHash: report.modelHash })
      } finally {
        await sim.close()
      }
    }, 240_000)
  }
})
