import { afterEach, describe, expect, it, vi } from 'vitest'
import { Simulation } from '../../src/federation/simulation.ts'
import { SKETCH_ROUNDS } from '../../src/federation/steps/geometry.ts'
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
      for (const p of sim.participants) expect(p.holding, `${p.name} after round ${round}`).toEqual({ updates: 0, merges: 0, sketchRounds: Array.from({ length: round }, (_, i) => i + 1) })
    }
    const proposals = [...(sim.participants[0]?.state.proposals.values() ?? [])]
    expect(proposals).toHaveLength(9)
    for (const p of proposals) expect(await sim.store.has(p.signed.record.delta.cid)).toBe(true)
  })

  it('holds the sketches of the last SKETCH_ROUNDS rounds only: a long run\'s votes cost, and its members hold, no more as it goes on', async () => {
    const last = SKETCH_ROUNDS + 2
    sim = await Simulation.create(smallConfig({ rounds: last, ledger: { kind: 'tangle', difficulty: 0 }, task: { kind: 'classify', trainLimit: 300, testLimit: 200, features: 512 } }), { dir: await tempDir() })
    await sim.charter()
    for (let round = 1; round <= last; round++) {
      await sim.round(round)
      const window = Array.from({ length: Math.min(round, SKETCH_ROUNDS) }, (_, i) => Math.max(1, round - SKETCH_ROUNDS + 1) + i)
      for (const p of sim.participants) expect(p.holding, `${p.name} after round ${round}`).toEqual({ updates: 0, merges: 0, sketchRounds: window })
    }
  }, 60_000)

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
