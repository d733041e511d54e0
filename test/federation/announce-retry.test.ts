import { afterEach, describe, expect, it, vi } from 'vitest'
import { BackendUnavailableError } from '../../src/core/errors.ts'
import type { Participant } from '../../src/federation/participant.ts'
import type { Simulation } from '../../src/federation/simulation.ts'
import { peekRecord } from '../../src/identity/index.ts'
import { chartered, judged } from './helpers.ts'

/**
 * The recorder's checkpoint was anchored, but its announcement on the bus failed once and was
 * not tried again: the recorder applied the checkpoint from its ledger, the others never heard
 * of it, and the run ended with members on different rounds (found red-teaming). An
 * announcement is now tried again while the bus is unavailable, as anchoring is.
 */
describe('an announcement the bus fails once', () => {
  let sim: Simulation
  afterEach(async () => { vi.restoreAllMocks(); await sim?.close() })

  it('is tried again: every member ends the round on the recorder\'s checkpoint', async () => {
    sim = await chartered({ rounds: 1, agents: 3 })
    await sim.propose(1)
    await judged(sim, 1)
    const publish = sim.bus.publish.bind(sim.bus)
    let failed = false
    vi.spyOn(sim.bus, 'publish').mockImplementation(async (room, message, options) => {
      if (!failed && message.kind === 'record' && peekRecord(message.jwt).record?.type === 'checkpoint') { failed = true; throw new BackendUnavailableError('bus down') }
      return publish(room, message, options)
    })
    await sim.closeRound(1)
    expect(failed).toBe(true)
    expect(sim.participants.map((q: Participant) => q.state.global?.round)).toEqual([1, 1, 1])
  }, 120_000)
})
