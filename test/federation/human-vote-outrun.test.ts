import { afterEach, describe, expect, it, vi } from 'vitest'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { byHand, errorsFor, inject, measuredVote, recorderOf, smallConfig, tempDir } from './helpers.ts'

const ALICE = '@alice:localhost'

/**
 * Under `humanVotes: counted`, a hostile recorder left a researcher's reaction out and decided
 * as soon as the members' votes were in, seconds after the proposal: before the first standby's
 * wait to anchor the reaction itself was over, so the vote was lost (found red-teaming). Where
 * researchers' votes count, a proposal may be decided before its window is over only once every
 * researcher's vote is in too (state.decidableAt).
 */
describe('a hostile recorder leaving a researcher\'s reaction out', () => {
  let sim: Simulation
  afterEach(async () => { await sim?.close() })

  /**
   * Round 1 under counted researchers' votes, every member's proposal in (the round may close
   * at once: state.closableAt), the recorder played by hand from here (it hears no reaction).
   */
  async function everyoneProposed (): Promise<{ proposal: string, recorder: Participant, proposer: Participant, judges: Participant[], honest: Participant }> {
    sim = await Simulation.create(smallConfig({ rounds: 1, researchers: [ALICE], humanVotes: 'counted', windowSeconds: 20 }), { dir: await tempDir(), driver: byHand })
    await sim.charter()
    const recorder = recorderOf(sim, 1)
    const proposer = sim.participants.find(q => q !== recorder) as Participant
    await sim.propose(1)
    recorder.stop()
    const judges = sim.participants.filter(q => q !== proposer)
    const proposal = (proposer.state.rounds.get(1)?.proposals ?? []).find(id => proposer.state.proposals.get(id)?.signed.issuer === proposer.did) as string
    return { proposal, recorder, proposer, judges, honest: judges.find(q => q !== recorder) as Participant }
  }

  /** Every judge votes as it measured; then the recorder decides from the votes in. */
  async function decideAtOnce ({ proposal, recorder, proposer, judges, honest }: Awaited<ReturnType<typeof everyoneProposed>>): Promise<string> {
    for (const judge of judges) expect(errorsFor(sim, await inject(sim, judge.identity, await measuredVote(sim, judge, proposal, 'measured')))).toEqual([])
    return inject(sim, recorder.identity, { type: 'decision', federation: sim.config.federation, round: 1, proposal, proposer: proposer.did, ...honest.state.derive(proposal) })
  }

  it('may not decide before the window is over; the standby anchors the reaction, and it counts', async () => {
    const round = await everyoneProposed()
    const { proposal, honest } = round
    await sim.bus.publish(sim.config.federation, { kind: 'reaction', from: ALICE, key: '👍', event: '$a1', proposal })
    await sim.settle()
    const early = await decideAtOnce(round)
    expect(errorsFor(sim, early)).toEqual(['PrematureDecisionError', 'PrematureDecisionError'])
    // The first standby's wait (2 s) runs out and it anchors Alice's reaction: it counts.
    await vi.waitFor(() => { expect(honest.state.proposals.get(proposal)?.humans.size).toBe(1) }, { timeout: 20_000, interval: 200 })
    await sim.settle()
    const human = [...honest.state.proposals.get(proposal)?.humans.values() ?? []][0]?.block as string
    expect(honest.state.derive(proposal).votes).toContain(human)
    const report = await audit(sim.ledger, sim.store)
    expect(report).toMatchObject({ ok: true, humanVotes: 1 })
    expect(report.rejected.map(r => [r.block, r.error.name])).toEqual([[early, 'PrematureDecisionError']])
  }, 60_000)

  // Found red-teaming the first fix, which let a proposal be decided early once every researcher had voted.
  it('nor once it forged the researcher\'s vote itself, to have every vote in', async () => {
    const round = await everyoneProposed()
    // Alice's 👍, anchored by the recorder as a 👎 under her event: the ledger cannot tell (README).
    const forged = await inject(sim, round.recorder.identity, { type: 'human-vote', federation: sim.config.federation, round: 1, proposal: round.proposal, accept: false, researcher: ALICE, event: '$a1' })
    expect(errorsFor(sim, forged)).toEqual([])
    expect(errorsFor(sim, await decideAtOnce(round))).toEqual(['PrematureDecisionError', 'PrematureDecisionError'])
  }, 60_000)
})
