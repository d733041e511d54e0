import { afterEach, describe, expect, it, vi } from 'vitest'
import { audit } from '../../src/federation/audit.ts'
import type { Simulation } from '../../src/federation/simulation.ts'
import { peekRecord } from '../../src/identity/index.ts'
import { chartered, judged, recorderOf } from './helpers.ts'

/**
 * The round loop offers the recorder its turn again while the round is open (round-loop.ts).
 * Offered it before its own decisions came back through the bus (a homeserver's sync is late),
 * the recorder applied them while catching up, which anchored its checkpoint, and then, the
 * checkpoint not yet applied, anchored a second that every peer refused (found red-teaming).
 */
describe('a recorder offered its turn again before its own decisions came back', () => {
  let sim: Simulation
  afterEach(async () => { vi.restoreAllMocks(); await sim?.close() })

  it('anchors one checkpoint, and the audit lists nothing refused', async () => {
    sim = await chartered({ rounds: 1, agents: 3 })
    const recorder = recorderOf(sim, 1)
    await sim.propose(1)
    await judged(sim, 1)
    const publish = sim.bus.publish.bind(sim.bus)
    let late = true
    vi.spyOn(sim.bus, 'publish').mockImplementation(async (room, message, options) => {
      if (late && message.kind === 'record' && peekRecord(message.jwt).record?.type === 'decision') return
      return publish(room, message, options)
    })
    await recorder.closeRound(1)
    await sim.settle()
    late = false
    await recorder.closeRound(1)
    await sim.settle()
    const checkpoints: string[] = []
    for await (const block of sim.ledger.blocks()) if (peekRecord(block.record).record?.type === 'checkpoint') checkpoints.push(block.id)
    expect(checkpoints).toHaveLength(1)
    expect(await audit(sim.ledger, sim.store)).toMatchObject({ ok: true, checkpoints: 1, rejected: [] })
    expect(new Set(sim.participants.map(q => q.state.global?.model.sha256)).size).toBe(1)
  }, 120_000)
})
