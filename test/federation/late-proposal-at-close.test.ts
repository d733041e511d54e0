import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Proposal } from '../../src/core/records.ts'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import type { Simulation } from '../../src/federation/simulation.ts'
import { chartered } from './helpers.ts'

/**
 * A hostile member withholds its proposal and anchors it just as the honest recorder closes
 * the round (a window on, no decision yet: the proposal is taken). The recorder decides
 * every open proposal, this one too, inside its window and before its judges voted: every
 * peer refuses the honest recorder's decision (PrematureDecisionError).
 */
describe('a proposal anchored just as the recorder closes its round', () => {
  let sim: Simulation
  afterEach(async () => { vi.restoreAllMocks(); await sim?.close() })

  it('does not get an honest recorder\'s decision refused', async () => {
    sim = await chartered({ rounds: 1, agents: 3 })
    const [founder] = sim.participants as [Participant]
    const recorder = sim.participants.find(q => q.did === founder.state.recorder(1)) as Participant
    const [honest, hostile] = sim.participants.filter(q => q !== recorder) as [Participant, Participant]
    await sim.propose(1, [recorder, honest])
    for (const id of recorder.state.rounds.get(1)?.proposals ?? []) {
      const voter = recorder.state.proposals.get(id)?.signed.issuer === recorder.did ? honest : recorder
      await voter.vote(id, (await voter.evaluate(id)).passes)
    }
    await sim.settle()
    // The hostile member trains and stores its update, and withholds its proposal (and its votes).
    const draft = await hostile.train(1)
    const late: Proposal = { type: 'proposal', federation: sim.config.federation, round: 1, base: hostile.state.global?.model.cid as string, delta: await hostile.publishDraft(), numSamples: draft.numSamples }
    const close = recorder.closeRound.bind(recorder)
    let slipped: string | undefined
    vi.spyOn(recorder, 'closeRound').mockImplementation(async (round, options) => {
      if (slipped === undefined && (options?.rank ?? 0) === 0) {
        // Anchored as the recorder's turn to close comes: the round may close, nothing is decided yet.
        const jwt = await hostile.identity.sign(late, { now: sim.now() })
        slipped = (await sim.ledger.append(jwt)).id
      }
      return close(round, options)
    })
    await sim.closeRound(1) // a standby decides the late proposal once its turn comes
    expect(slipped).toBeDefined()
    expect(sim.participants.map(q => q.state.proposals.has(slipped as string))).toEqual([true, true, true])
    const report = await audit(sim.ledger, sim.store)
    expect(report.ok).toBe(true)
    // The honest recorder anchored nothing its peers refuse.
    expect(report.rejected.filter(r => r.issuer === recorder.did).map(r => [r.type, r.error.name])).toEqual([])
  }, 240_000)
})
