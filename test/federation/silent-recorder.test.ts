import { afterEach, describe, expect, it, vi } from 'vitest'
import { peekRecord } from '../../src/identity/index.ts'
import { audit } from '../../src/federation/audit.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { smallConfig, tempDir } from './helpers.ts'

/**
 * The round's recorder, hostile, never anchors its round's decisions or checkpoint: no
 * other member could record the round (NotRecorderError), so one member stopped the
 * federation for good at its turn (NoCheckpointError; found red-teaming). The next member
 * in turn stands in once the ledger's time is a window past the round's last vote.
 */
describe('a recorder that never records', () => {
  let sim: Simulation
  afterEach(async () => { await sim?.close() })

  /** The participant that records `round`, made silent: it closes no round, whoever asks. */
  function silence (round: number): Participant {
    const [founder] = sim.participants as [Participant]
    const recorder = sim.participants.find(q => q.did === founder.state.recorder(round)) as Participant
    vi.spyOn(recorder, 'closeRound').mockResolvedValue()
    return recorder
  }

  /** Who signed round `round`'s decisions and checkpoint. */
  async function recordersOf (round: number): Promise<string[]> {
    const by = new Set<string>()
    for await (const block of sim.ledger.blocks()) {
      const { record, issuer } = peekRecord(block.record)
      if ((record?.type === 'decision' || record?.type === 'checkpoint') && record.round === round && issuer !== null) by.add(issuer)
    }
    return [...by]
  }

  it('is stood in for by the next member in turn once a window has passed: the rounds go on, the same for everyone, and the audit passes', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 2, agents: 4 }), { dir: await tempDir() })
    await sim.charter()
    const silent = silence(1)
    const report = await sim.round(1)
    expect(report.accepts).toBeGreaterThan(0)
    expect(new Set(sim.participants.map(q => q.state.global?.model.cid)).size).toBe(1)
    const recorded = await recordersOf(1)
    expect(recorded).not.toContain(silent.did)
    expect(recorded).toEqual([sim.participants[0]?.state.standby(1, 1)])
    await sim.round(2)
    const result = await audit(sim.ledger, sim.store)
    expect(result.ok).toBe(true)
    expect(result.rejected).toEqual([])
  }, 240_000)
})
