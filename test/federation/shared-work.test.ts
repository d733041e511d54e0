import { afterAll, describe, expect, it } from 'vitest'
import { audit } from '../../src/federation/audit.ts'
import type { GlobalModel } from '../../src/federation/merge.ts'
import { SharedWork } from '../../src/federation/shared-work.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { smallConfig, tempDir } from './helpers.ts'

const model = (v: number): GlobalModel => ({ weights: new Map([['w', { shape: [1], data: Float32Array.of(v) }]]) })

describe('work shared by the participants of one process', () => {
  it('computes a merge once for the same inputs, anew for any other input', async () => {
    const shared = new SharedWork(3)
    let computed = 0
    const compute = (v: number) => async () => { computed++; await Promise.resolve(); return model(v) }
    const [a, b] = await Promise.all([shared.merge({ parent: 'x', accepted: [1] }, compute(1)), shared.merge({ parent: 'x', accepted: [1] }, compute(2))])
    expect(a).toBe(b)
    expect(await shared.merge({ parent: 'x', accepted: [1] }, compute(3))).toBe(a)
    expect(computed).toBe(1)
    const other = await shared.merge({ parent: 'x', accepted: [1, 2] }, compute(4))
    expect(other.weights.get('w')?.data[0]).toBe(4)
    expect(shared.merges.counts).toEqual({ computed: 2, shared: 2 })
  })

  it('does not pass one participant\'s failure to another: the second computes its own', async () => {
    const shared = new SharedWork(3)
    const failing = shared.merge({ k: 1 }, async () => { await Promise.resolve(); throw new Error('aborted') })
    const mine = shared.merge({ k: 1 }, async () => model(7))
    await expect(failing).rejects.toThrow('aborted')
    expect((await mine).weights.get('w')?.data[0]).toBe(7)
  })
})

describe('a simulation shares merges and decoded updates', () => {
  let sim: Simulation | undefined
  afterAll(async () => { await sim?.close() })

  it('merges each round once for all its members, fetches each update once, and the audit, merging alone, gets the same model', async () => {
    sim = await Simulation.create(smallConfig({ agents: 4, rounds: 1, committee: 2, quorum: 1 }), { dir: await tempDir() })
    await sim.charter()
    await sim.propose(1)
    const report = await sim.closeRound(1)
    expect(report.accepts).toBe(4)
    // Each member merges round 1; one of them computes it.
    expect(sim.shared.merges.counts.computed).toBe(1)
    expect(sim.shared.merges.counts.shared).toBeGreaterThanOrEqual(3)
    // Each proposal is judged by its committee of 2: fetched once, shared with the other judge (and the merge).
    expect(sim.shared.models.counts.computed).toBe(4)
    const result = await audit(sim.ledger, sim.store)
    expect(result.ok).toBe(true)
    expect(result.modelHash).toBe(report.modelHash)
  })
})
