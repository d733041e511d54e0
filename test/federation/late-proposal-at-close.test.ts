import { afterEach, describe, expect, it, vi } from 'vitest'
import { audit } from '../../src/federation/audit.ts'
import type { Simulation } from '../../src/federation/simulation.ts'
import { oneWithheld } from './late-proposals.ts'

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
    const withheld = await oneWithheld()
    sim = withheld.sim
    const { recorder, hostile, late } = withheld
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
