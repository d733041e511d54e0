import { describe, expect, it, vi } from 'vitest'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { byHand, errorsFor, inject, measuredVote, smallConfig, tempDir } from './helpers.ts'

const ALICE = '@alice:localhost'

/**
 * Under `humanVotes: counted`, a hostile recorder left a researcher's reaction out and decided
 * as soon as the members' votes were in, seconds after the proposal: before the first standby's
 * wait to anchor the reaction itself was over, so the vote was lost (found red-teaming). Where
 * researchers' votes count, a proposal may be decided before its window is over only once every
 * researcher's vote is in too (state.decidableAt).
 */
describe('a hostile recorder leaving a researcher\'s reaction out', () => {
  it('may not decide before the window is over; the standby anchors the reaction, and it counts', async () => {
    const sim = await Simulation.create(smallConfig({ rounds: 1, researchers: [ALICE], humanVotes: 'counted', windowSeconds: 20 }), { dir: await tempDir(), driver: byHand })
    try {
      await sim.charter()
      const p = (i: number): Participant => sim.participants[i] as Participant
      const recorder = sim.participants.find(q => q.did === p(0).state.recorder(1)) as Participant
      const proposer = sim.participants.find(q => q !== recorder) as Participant
      await sim.propose(1) // every member proposes: the round may close at once (state.closableAt)
      const proposal = (proposer.state.rounds.get(1)?.proposals ?? []).find(id => proposer.state.proposals.get(id)?.signed.issuer === proposer.did) as string
      recorder.stop() // the hostile recorder, played by hand below: it leaves Alice's reaction out
      await sim.bus.publish(sim.config.federation, { kind: 'reaction', from: ALICE, key: '👍', event: '$a1', proposal })
      await sim.settle()
      const judges = sim.participants.filter(q => q !== proposer)
      for (const judge of judges) expect(errorsFor(sim, await inject(sim, judge.identity, await measuredVote(sim, judge, proposal, 'measured')))).toEqual([])
      const honest = judges.find(q => q !== recorder) as Participant
      const early = await inject(sim, recorder.identity, { type: 'decision', federation: sim.config.federation, round: 1, proposal, proposer: proposer.did, ...honest.state.derive(proposal) })
      expect(errorsFor(sim, early)).toEqual(['PrematureDecisionError', 'PrematureDecisionError'])
      // The first standby's wait (2 s) runs out and it anchors Alice's reaction: it counts.
      await vi.waitFor(() => { expect(honest.state.proposals.get(proposal)?.humans.size).toBe(1) }, { timeout: 20_000, interval: 200 })
      await sim.settle()
      const human = [...honest.state.proposals.get(proposal)?.humans.values() ?? []][0]?.block as string
      expect(honest.state.derive(proposal).votes).toContain(human)
      const report = await audit(sim.ledger, sim.store)
      expect(report).toMatchObject({ ok: true, humanVotes: 1 })
      expect(report.rejected.map(r => [r.block, r.error.name])).toEqual([[early, 'PrematureDecisionError']])
    } finally {
      await sim.close()
    }
  }, 60_000)

  // Found red-teaming the first fix, which let a proposal be decided early once every researcher had voted.
  it('nor once it forged the researcher\'s vote itself, to have every vote in', async () => {
    const sim = await Simulation.create(smallConfig({ rounds: 1, researchers: [ALICE], humanVotes: 'counted', windowSeconds: 20 }), { dir: await tempDir(), driver: byHand })
    try {
      await sim.charter()
      const p = (i: number): Participant => sim.participants[i] as Participant
      const recorder = sim.participants.find(q => q.did === p(0).state.recorder(1)) as Participant
      const proposer = sim.participants.find(q => q !== recorder) as Participant
      await sim.propose(1)
      const proposal = (proposer.state.rounds.get(1)?.proposals ?? []).find(id => proposer.state.proposals.get(id)?.signed.issuer === proposer.did) as string
      recorder.stop()
      // Alice's 👍, anchored by the recorder as a 👎 under her event: the ledger cannot tell (README).
      const forged = await inject(sim, recorder.identity, { type: 'human-vote', federation: sim.config.federation, round: 1, proposal, accept: false, researcher: ALICE, event: '$a1' })
      expect(errorsFor(sim, forged)).toEqual([])
      const judges = sim.participants.filter(q => q !== proposer)
      for (const judge of judges) expect(errorsFor(sim, await inject(sim, judge.identity, await measuredVote(sim, judge, proposal, 'measured')))).toEqual([])
      const honest = judges.find(q => q !== recorder) as Participant
      const early = await inject(sim, recorder.identity, { type: 'decision', federation: sim.config.federation, round: 1, proposal, proposer: proposer.did, ...honest.state.derive(proposal) })
      expect(errorsFor(sim, early)).toEqual(['PrematureDecisionError', 'PrematureDecisionError'])
    } finally {
      await sim.close()
    }
  }, 60_000)
})
