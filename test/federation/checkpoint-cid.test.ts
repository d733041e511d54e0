import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { audit, refusedLines, type AuditReport } from '../../src/federation/audit.ts'
import { ObservedRun } from '../../src/federation/observer.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { smallConfig, tempDir } from './helpers.ts'

/**
 * The recorder anchors the right checkpoint under another model's CID (the charter's, which
 * every member holds), keeping the merge's sha-256: every peer compared the hash only and took
 * it, the federation went on from a checkpoint its members' copies could not replay, and only
 * the audit, which reads the checkpoint by its CID, found it (found red-teaming). Each member
 * now stores its own merge, and the CID must be the one named.
 */
describe('a checkpoint that names another model\'s CID', () => {
  let sim: Simulation
  afterEach(async () => { vi.restoreAllMocks(); await sim?.close() })

  it('is refused by every peer (DerivationMismatchError), a standby records the round, and the audit refuses it too, ending with the members\' model', async () => {
    const dir = await tempDir()
    sim = await Simulation.create(smallConfig({ rounds: 2, agents: 3 }), { dir })
    await sim.charter()
    const [founder] = sim.participants as [Participant]
    const recorder = sim.participants.find(q => q.did === founder.state.recorder(1)) as Participant
    const initial = founder.state.charter?.record.initial.cid as string
    const sign = recorder.identity.sign.bind(recorder.identity)
    let forged: string | undefined
    vi.spyOn(recorder.identity, 'sign').mockImplementation(async (record, options) => {
      if (record.type !== 'checkpoint' || forged !== undefined) return sign(record, options)
      forged = record.model.cid
      return sign({ ...record, model: { ...record.model, cid: initial } }, options)
    })
    await sim.round(1)
    expect(forged).toBeDefined()
    const refused = [...sim.rejections.values()].flat()
    expect(refused.map(r => r.error.name)).toEqual(['DerivationMismatchError', 'DerivationMismatchError', 'DerivationMismatchError'])
    const bad = refused[0]?.block
    expect(sim.participants.map(q => q.state.rounds.get(1)?.checkpoint?.record.model.cid)).toEqual([forged, forged, forged])
    vi.restoreAllMocks()
    await sim.round(2)
    expect(new Set(sim.participants.map(q => q.state.global?.model.cid)).size).toBe(1)
    // `conclave chat`'s read-only replay, which stores nothing, refuses it too: it took it, then refused the standby's and stayed in round 1 (found red-teaming).
    await writeFile(join(dir, 'config.json'), JSON.stringify(sim.config))
    const observed = await ObservedRun.open(dir)
    try {
      expect((await observed.member('agent-1')).state.global).toEqual(sim.participants[0]?.state.global)
    } finally {
      await observed.close()
    }
    // The audit refuses the recorder's checkpoint as every peer did, names it, and ends with the members' model.
    const report = await audit(sim.ledger, sim.store)
    expect(report).toMatchObject({ ok: true, checkpoints: 2, modelHash: sim.participants[0]?.state.global?.model.sha256 })
    expect(report.rejected).toEqual([expect.objectContaining({ block: bad, type: 'checkpoint', issuer: recorder.did, error: expect.objectContaining({ name: 'DerivationMismatchError' }) })])
    // `conclave audit` prints it beside "ok", so an ok audit does not hide who was refused.
    expect(refusedLines(report)).toEqual(['1 record refused, as every member refused it:', expect.stringContaining(`(checkpoint by ${recorder.did}): DerivationMismatchError: checkpoint of round 1 names model ${initial}`)])
    const many = { rejected: Array.from({ length: 7 }, () => report.rejected[0] as AuditReport['rejected'][number]) }
    expect(refusedLines(many).at(-1)).toBe('  and 2 more (--json lists them)')
  }, 240_000)
})
