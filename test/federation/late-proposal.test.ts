import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Proposal } from '../../src/core/records.ts'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import type { Simulation } from '../../src/federation/simulation.ts'
import { chartered, errorsFor } from './helpers.ts'

/**
 * A member that did not propose waits for the recorder's decisions and anchors a proposal
 * before the checkpoint: every peer took it, then refused the checkpoint (UndecidedRoundError)
 * and nobody decided it, so the round never ended (found red-teaming). A proposal after its
 * round's first decision is refused (RoundClosingError).
 */
describe('a proposal anchored after its round\'s decisions', () => {
  let sim: Simulation
  afterEach(async () => { vi.restoreAllMocks(); await sim?.close() })

  it('is refused by every peer and listed by the audit; the round gets its checkpoint', async () => {
    sim = await chartered({ rounds: 1 })
    const [founder] = sim.participants as [Participant]
    const recorder = sim.participants.find(q => q.did === founder.state.recorder(1)) as Participant
    const [honest, hostile] = sim.participants.filter(q => q !== recorder) as [Participant, Participant]
    await sim.propose(1, [honest])
    const proposal = honest.state.rounds.get(1)?.proposals[0] as string
    for (const v of [recorder, hostile]) await v.vote(proposal, (await v.evaluate(proposal)).passes)
    await sim.settle()
    await hostile.train(1)
    const late: Proposal = { type: 'proposal', federation: sim.config.federation, round: 1, base: hostile.state.global?.model.cid as string, delta: await hostile.publishDraft(), numSamples: 1 }
    // A window on: the round may close with a member's proposal missing (cut-short.test.ts).
    const now = Date.now()
    vi.spyOn(Date, 'now').mockImplementation(() => now + (sim.config.windowSeconds + 1) * 1000)
    const jwt = await hostile.identity.sign(late, { now: sim.now() })
    await recorder.closeRound(1) // its decision; its checkpoint follows once it applies the decision
    const block = await sim.ledger.append(jwt)
    await sim.bus.publish(sim.config.federation, { kind: 'record', block: block.id, jwt })
    await sim.settle()
    expect(errorsFor(sim, block.id)).toEqual(['RoundClosingError', 'RoundClosingError', 'RoundClosingError'])
    expect(sim.participants.map(q => q.state.global?.round)).toEqual([1, 1, 1])
    const report = await audit(sim.ledger, sim.store)
    expect(report.ok).toBe(true)
    expect(report.rejected.map(r => [r.block, r.error.name])).toEqual([[block.id, 'RoundClosingError']])
  }, 240_000)
})
