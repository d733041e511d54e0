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

  // Found red-teaming the standbys: the round loop offered each turn once, so a proposal the
  // silent recorder anchored just before the first standby's turn moved that turn past its
  // offer; the loop went on to a second silent member and gave up (NoCheckpointError).
  it('still gives way to an honest standby whose turn a late proposal moved', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 1, agents: 3 }), { dir: await tempDir() })
    await sim.charter()
    const silent = silence(1)
    const state = silent.state
    const first = sim.participants.find(q => q.did === state.standby(1, 1)) as Participant
    const second = sim.participants.find(q => q.did === state.standby(1, 2)) as Participant
    vi.spyOn(second, 'closeRound').mockResolvedValue()
    const close = first.closeRound.bind(first)
    let late = false
    vi.spyOn(first, 'closeRound').mockImplementation(async (round, options) => {
      if (options?.rank === 1 && !late) {
        late = true
        await silent.propose(round) // its withheld proposal lands just before the first standby's turn
        await sim.settle()
      }
      return close(round, options)
    })
    await sim.propose(1, [first, second])
    await sim.closeRound(1)
    expect(late).toBe(true)
    expect(await recordersOf(1)).toEqual([first.did])
    expect((await audit(sim.ledger, sim.store)).ok).toBe(true)
  }, 240_000)

  // Found red-teaming the standbys: a recorder late by a window, and honest, recorded once its
  // standby had checkpointed the round, and every peer refused its second checkpoint.
  it('and is late rather than silent leaves no record for the others to refuse', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 1, agents: 3 }), { dir: await tempDir() })
    await sim.charter()
    const [founder] = sim.participants as [Participant]
    const late = sim.participants.find(q => q.did === founder.state.recorder(1)) as Participant
    const close = late.closeRound.bind(late)
    vi.spyOn(late, 'closeRound').mockImplementation(async (round, options) => { if ((options?.rank ?? 0) >= 1) await close(round, { ...options, rank: 0 }) })
    await sim.round(1)
    expect([...sim.rejections.values()].flat().map(r => r.error.name)).toEqual([])
    expect((await audit(sim.ledger, sim.store)).rejected).toEqual([])
  }, 240_000)
})
