import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Checkpoint } from '../../src/core/records.ts'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { peekRecord } from '../../src/identity/index.ts'
import { recorderOf, smallConfig, tempDir } from './helpers.ts'
import { slipBeforeCheckpoint, withheldProposal } from './late-proposals.ts'

/**
 * As stale-merge.test.ts, but the member that slips the proposal in is the round's first
 * standby, and when its turn comes it checkpoints the round naming the model of the
 * recorder's refused checkpoint (the merge without its proposal) while listing its proposal
 * as merged. checkMerge on the recorder takes the merge it kept because its sha-256 is the
 * checkpoint's, without asking whether it is the merge of what the checkpoint lists.
 */
describe('a standby replaying the recorder\'s refused checkpoint model', () => {
  let sim: Simulation
  afterEach(async () => { vi.restoreAllMocks(); await sim?.close() })

  it('is refused by the recorder as by every peer and the audit', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 1, agents: 3 }), { dir: await tempDir() })
    await sim.charter()
    const recorder = recorderOf(sim, 1)
    const hostile = sim.participants.find(q => q.did === recorder.state.standby(1, 1)) as Participant
    const slippedIn = slipBeforeCheckpoint(sim, { recorder, by: hostile, proposal: await withheldProposal(sim, hostile) })
    // The recorder's checkpoint, which every peer refuses: its model is the merge without the slipped proposal.
    let stale: Checkpoint | undefined
    const signs = recorder.identity.sign.bind(recorder.identity)
    vi.spyOn(recorder.identity, 'sign').mockImplementation(async (record, options) => { if (record.type === 'checkpoint') stale ??= record; return signs(record, options) })
    // The recorder goes quiet after its refused checkpoint (its node lost the ledger for a while, say): it anchors nothing more this round, and still receives every block.
    const close = recorder.closeRound.bind(recorder)
    vi.spyOn(recorder, 'closeRound').mockImplementation(async (round, options) => { if (slippedIn() === undefined) await close(round, options) })
    // The hostile standby's checkpoint lists its proposal as merged, but names the recorder's stale model.
    const sign = hostile.identity.sign.bind(hostile.identity)
    vi.spyOn(hostile.identity, 'sign').mockImplementation(async (record, options) => sign(record.type === 'checkpoint' && stale !== undefined ? { ...record, model: stale.model } : record, options))
    await sim.closeRound(1).catch(() => undefined)
    const slipped = slippedIn()
    let forged: string | undefined
    for await (const block of sim.ledger.blocks()) {
      const { record, issuer } = peekRecord(block.record)
      if (record?.type === 'checkpoint' && issuer === hostile.did) forged = block.id
    }
    expect(slipped).toBeDefined()
    expect(forged).toBeDefined()
    expect(sim.participants.map(q => q.state.proposals.get(slipped as string)?.decision?.record.accepted)).toEqual([true, true, true])
    const report = await audit(sim.ledger, sim.store)
    // The audit and the honest peer refuse the forged checkpoint: it does not merge the proposal it lists.
    expect(report.rejected.filter(r => r.block === forged).map(r => r.error.name)).toEqual(['DerivationMismatchError'])
    const honest = sim.participants.find(q => q !== hostile && q !== recorder) as Participant
    expect((sim.rejections.get(honest.name) ?? []).filter(r => r.block === forged).map(r => r.error.name)).toEqual(['DerivationMismatchError'])
    // So does the recorder: it took it while the merge it kept had the forged checkpoint's sha-256.
    expect((sim.rejections.get(recorder.name) ?? []).filter(r => r.block === forged).map(r => r.error.name)).toEqual(['DerivationMismatchError'])
    expect(recorder.state.rounds.get(1)?.checkpoint?.block).not.toBe(forged)
    expect(recorder.globalModel?.ref.sha256).not.toBe(stale?.model.sha256)
  }, 240_000)
})
