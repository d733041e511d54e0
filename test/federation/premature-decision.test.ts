import { afterEach, describe, expect, it } from 'vitest'
import type { Decision } from '../../src/core/records.ts'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import type { Simulation } from '../../src/federation/simulation.ts'
import { chartered, errorsFor, inject } from './helpers.ts'

/**
 * The round's recorder, hostile, decides an honest proposal at once, before any vote: the
 * decision matched the votes applied so far (none), so every peer and the audit took it, and
 * every honest vote cast inside the window was then refused as "after its decision": one
 * hostile member rejected every honest update of its round with the audit saying ok (found
 * red-teaming). A decision inside its proposal's window must have every judge's vote.
 */
describe('a decision anchored inside its proposal\'s window before every judge voted', () => {
  let sim: Simulation
  afterEach(async () => { await sim?.close() })

  it('is refused by every peer and listed by the audit (PrematureDecisionError); the votes then cast count, and the recorder decides by them', async () => {
    sim = await chartered({ rounds: 1, agents: 3 })
    const [founder] = sim.participants as [Participant]
    const recorder = sim.participants.find(q => q.did === founder.state.recorder(1)) as Participant
    const proposer = sim.participants.find(q => q !== recorder) as Participant
    // Every member proposes, so the round may close (cut-short.test.ts): only the missing votes make the decision early.
    await sim.propose(1)
    const proposal = proposer.state.rounds.get(1)?.proposals.find(id => proposer.state.proposals.get(id)?.signed.issuer === proposer.did) as string
    const decision: Decision = { type: 'decision', federation: sim.config.federation, round: 1, proposal, proposer: proposer.did, ...founder.state.derive(proposal) }
    expect(decision).toMatchObject({ accepted: false, votes: [] })
    const early = await inject(sim, recorder.identity, decision)
    expect(errorsFor(sim, early)).toEqual(['PrematureDecisionError', 'PrematureDecisionError', 'PrematureDecisionError'])

    for (const voter of sim.participants.filter(q => q !== proposer)) await voter.vote(proposal, (await voter.evaluate(proposal)).passes)
    await sim.settle()
    expect(sim.participants.map(q => q.state.derive(proposal).votes.length)).toEqual([2, 2, 2])
    await sim.closeRound(1) // the other two proposals' votes never come: the round waits their window out
    expect(sim.participants.map(q => q.state.proposals.get(proposal)?.decision?.record.votes.length)).toEqual([2, 2, 2])
    const report = await audit(sim.ledger, sim.store)
    expect(report.ok).toBe(true)
    expect(report.rejected.map(r => [r.block, r.error.name])).toEqual([[early, 'PrematureDecisionError']])
  }, 240_000)

  it('is taken once the window has run out, whoever voted: a round whose judge never votes still closes', async () => {
    sim = await chartered({ rounds: 1, agents: 3 })
    const [founder] = sim.participants as [Participant]
    await sim.propose(1, [founder])
    const proposal = founder.state.rounds.get(1)?.proposals[0] as string
    const [, voter] = sim.participants as [Participant, Participant]
    await voter.vote(proposal, (await voter.evaluate(proposal)).passes)
    const before = sim.now()
    await sim.closeRound(1) // agent-3 never votes: the round waits its window out, on the simulation's clock
    expect(sim.now() - before).toBeGreaterThan(sim.config.windowSeconds)
    expect(sim.participants.map(q => q.state.proposals.get(proposal)?.decision?.record.votes.length)).toEqual([1, 1, 1])
    expect((await audit(sim.ledger, sim.store)).ok).toBe(true)
  }, 240_000)
})
