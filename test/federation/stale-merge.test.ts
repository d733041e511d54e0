import { afterEach, describe, expect, it, vi } from 'vitest'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { recorderOf, smallConfig, tempDir } from './helpers.ts'
import { slipBeforeCheckpoint, withheldProposal } from './late-proposals.ts'

/**
 * The recorder closes a round nobody proposed in: it merges (nothing), keeps that merge
 * (held.merged) and anchors its checkpoint. A hostile member anchors its proposal just before
 * that checkpoint: every peer refuses the checkpoint (UndecidedRoundError), a standby later
 * decides the proposal (accepted) and checkpoints the merge with it. The recorder checks
 * that checkpoint against the merge it kept from before the proposal came, refuses it
 * (DerivationMismatchError) and stays on the old model for good.
 */
describe('a proposal slipped in between the recorder\'s merge and its checkpoint', () => {
  let sim: Simulation
  afterEach(async () => { vi.restoreAllMocks(); await sim?.close() })

  it('leaves every honest member on the same model', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 1, agents: 3 }), { dir: await tempDir() })
    await sim.charter()
    const recorder = recorderOf(sim, 1)
    const hostile = sim.participants.find(q => q !== recorder) as Participant
    // The hostile member trains and stores its update, and withholds its proposal.
    const slippedIn = slipBeforeCheckpoint(sim, { recorder, by: hostile, proposal: await withheldProposal(sim, hostile) })
    // No honest member proposes this round (an agent may sit a round out); the recorder closes it once its window is out.
    await sim.closeRound(1).catch(() => undefined)
    const slipped = slippedIn()
    expect(slipped).toBeDefined()
    // Precondition: the proposal was taken, and merged by the standby's checkpoint.
    expect(sim.participants.map(q => q.state.proposals.get(slipped as string)?.decision?.record.accepted)).toEqual([true, true, true])
    const report = await audit(sim.ledger, sim.store)
    expect(report.ok).toBe(true)
    // The recorder refuses only its own checkpoint (the proposal was undecided); it refused the standby's too (DerivationMismatchError) while it trusted the merge it kept.
    expect((sim.rejections.get(recorder.name) ?? []).map(r => r.error.name)).toEqual(['UndecidedRoundError'])
    // Every member should hold the audited model; the recorder refused the standby's checkpoint.
    expect(sim.participants.map(q => q.state.global?.round)).toEqual([1, 1, 1])
    expect(sim.participants.map(q => q.globalModel?.ref.sha256)).toEqual([report.modelHash, report.modelHash, report.modelHash])
  }, 240_000)
})
