import { afterEach, describe, expect, it } from 'vitest'
import { MergeReplay } from '../../src/federation/merge-replay.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { FederationState } from '../../src/federation/state.ts'
import { smallConfig, tempDir } from './helpers.ts'

// Found red-teaming: the replay kept every proposal's decoded update to the end, so an audit
// or a dashboard of 16 members × 100 rounds of a 64 MiB model would hold about 100 GiB.
describe('the merge replay of a run', () => {
  let sim: Simulation | undefined
  afterEach(async () => { await sim?.close(); sim = undefined })

  it('holds a round\'s updates only until its checkpoint, and derives every checkpoint still', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 3 }), { dir: await tempDir() })
    await sim.charter()
    for (const round of [1, 2, 3]) {
      await sim.propose(round)
      await sim.closeRound(round)
    }
    const state = new FederationState()
    const replay = new MergeReplay(sim.store, state)
    const heldAtCheckpoints: number[] = []
    let mostHeld = 0
    for await (const block of sim.ledger.blocks()) {
      const { record } = await state.apply(block, { ledger: sim.ledger, beforeCommit: replay.beforeCommit })
      await replay.applied(record, block.id)
      mostHeld = Math.max(mostHeld, replay.held)
      if (record.type === 'checkpoint') heldAtCheckpoints.push(replay.held)
    }
    expect(heldAtCheckpoints).toEqual([0, 0, 0])
    expect(mostHeld).toBe(sim.participants.length)
    expect(replay.model?.sha256).toBe(sim.participants[0]?.state.global?.model.sha256)
  })
})
