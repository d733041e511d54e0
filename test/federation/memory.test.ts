import { afterEach, describe, expect, it } from 'vitest'
import { Simulation } from '../../src/federation/simulation.ts'
import { smallConfig, tempDir } from './helpers.ts'

/** A long run must not hold what it no longer needs: each merged round's Δw and merges are let go. */
describe('what a member holds between rounds', () => {
  let sim: Simulation | undefined
  afterEach(async () => { await sim?.close() })

  it('holds no Δw and no merge of a round once its checkpoint is applied; the Δw stay on the store by CID', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 3 }), { dir: await tempDir() })
    await sim.charter()
    for (let round = 1; round <= 3; round++) {
      const report = await sim.round(round)
      expect(report.accepts).toBeGreaterThan(0)
      for (const p of sim.participants) expect(p.holding, `${p.name} after round ${round}`).toEqual({ updates: 0, merges: 0 })
    }
    const proposals = [...(sim.participants[0]?.state.proposals.values() ?? [])]
    expect(proposals).toHaveLength(9)
    for (const p of proposals) expect(await sim.store.has(p.signed.record.delta.cid)).toBe(true)
  })
})
