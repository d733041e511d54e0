import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Checkpoint, Proposal } from '../../src/core/records.ts'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { peekRecord } from '../../src/identity/index.ts'
import { smallConfig, tempDir } from './helpers.ts'

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
    const [founder] = sim.participants as [Participant]
    const recorder = sim.participants.find(q => q.did === founder.state.recorder(1)) as Participant
    const hostile = sim.participants.find(q => q.did === founder.state.standby(1, 1)) as Participant
    const draft = await hostile.train(1)
    const delta = await hostile.publishDraft()
    const late: Proposal = { type: 'proposal', federation: sim.config.federation, round: 1, base: hostile.state.global?.model.cid as string, delta, numSamples: draft.numSamples, metric: { name: 'loss', value: draft.loss } }
    const append = sim.ledger.append.bind(sim.ledger)
    let slipped: string | undefined
    let stale: Checkpoint | undefined
    let forged: string | undefined
    vi.spyOn(sim.ledger, 'append').mockImplementation(async (jwt, options) => {
      const { record, issuer } = peekRecord(jwt)
      if (slipped === undefined && record?.type === 'checkpoint' && issuer === recorder.did) {
        // Anchored just before the recorder's checkpoint, after the recorder merged (as stale-merge.test.ts).
        stale = record as Checkpoint
        slipped = (await append(await hostile.identity.sign(late, { now: sim.now() }))).id
      }
      const block = await append(jwt, options)
      if (forged === undefined && record?.type === 'checkpoint' && issuer === hostile.did) forged = block.id
      return block
    })
    // The recorder goes quiet after its refused checkpoint (its node lost the ledger for a while, say): it anchors nothing more this round, and still receives every block.
    const close = recorder.closeRound.bind(recorder)
    vi.spyOn(recorder, 'closeRound').mockImplementation(async (round, options) => { if (slipped === undefined) await close(round, options) })
    // The hostile standby's checkpoint lists its proposal as merged, but names the recorder's stale model.
    const sign = hostile.identity.sign.bind(hostile.identity)
    vi.spyOn(hostile.identity, 'sign').mockImplementation(async (record, options) => sign(record.type === 'checkpoint' && stale !== undefined ? { ...record, model: stale.model } : record, options))
    await sim.closeRound(1).catch(() => undefined)
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
