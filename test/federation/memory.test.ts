import { afterEach, describe, expect, it, vi } from 'vitest'
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

  it('scores a global model once: asking about the trend again fetches nothing (an outsider\'s question would otherwise re-score every round\'s model)', async () => {
    sim = await Simulation.create(smallConfig({ rounds: 2 }), { dir: await tempDir() })
    await sim.charter()
    for (let round = 1; round <= 2; round++) await sim.round(round)
    const member = sim.participants[0]
    const model = member?.state.global?.model
    if (member === undefined || model === undefined) throw new Error('no global model after two rounds')
    const first = await member.score(model)
    const get = vi.spyOn(sim.store, 'get')
    expect(await member.score(model)).toEqual(first)
    expect(get).not.toHaveBeenCalled()
  })
})
