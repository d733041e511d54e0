import { afterEach, describe, expect, it, vi } from 'vitest'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { recorderOf, smallConfig, tempDir } from './helpers.ts'
import { slipBeforeCheckpoint, withheldProposal } from './late-proposals.ts'

/**
 * A proposal anchored just before the recorder's checkpoint (as in stale-merge.test.ts), whose
 * judges vote on it at once, may be decided at once (state.decidableAt). The round loop slept
 * to the next turn still to come (standby 1's, two windows after the proposal) before offering
 * the recorder's turn again, and votes landing meanwhile did not wake it: the decision came 300
 * to 1200 s after the votes (found red-teaming). A record applied meanwhile now ends the wait.
 */
describe('a late proposal whose judges all voted at once', () => {
  let sim: Simulation
  afterEach(async () => { vi.restoreAllMocks(); await sim?.close() })

  it('is decided by the recorder without waiting out its window', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 1, agents: 3 }), { dir: await tempDir() })
    await sim.charter()
    const recorder = recorderOf(sim, 1)
    const late = sim.participants.find(q => q !== recorder) as Participant
    const slippedIn = slipBeforeCheckpoint(sim, { recorder, by: late, proposal: await withheldProposal(sim, late) })
    await sim.closeRound(1)
    const slipped = slippedIn()
    expect(slipped).toBeDefined()
    const report = await audit(sim.ledger, sim.store)
    expect(report.ok).toBe(true)
    const entry = recorder.state.proposals.get(slipped as string)
    const votedAt = Math.max(...[...(entry?.votes.values() ?? [])].map(v => v.signed.issuedAt))
    // Precondition: every judge voted within seconds of the proposal, and the recorder decided it.
    expect(entry?.votes.size).toBe(2)
    expect(votedAt - (entry?.time as number)).toBeLessThan(10)
    expect(entry?.decision).toBeDefined()
    const decidedAt = (await sim.ledger.get(entry?.decision?.block as string))?.time as number
    // Decidable once the votes were in (state.decidableAt is -Infinity).
    expect(decidedAt - votedAt).toBeLessThan(60) // before: 300, 600 or 1200 (window 600 s)
  }, 240_000)
})
