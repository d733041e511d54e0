import { afterEach, describe, expect, it, vi } from 'vitest'
import type { SparseVector } from '../../src/data/features.ts'
import { mergeRound } from '../../src/federation/merge.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import type { FederationState } from '../../src/federation/state.ts'
import { loadTask } from '../../src/ml/task.ts'
import type { Weights } from '../../src/ml/weights.ts'
import { expectAuditClean, smallConfig, tempDir } from './helpers.ts'

/** The kernel row the hostile member fills, of a feature its judge never reads (found before the run). */
const target = { used: new Set<number>(), feature: -1 }

// The hostile member's round-1 update: its honest one, plus 3.3e38 (finite) on every weight of one
// feature its judge's examples do not have, so no judge's score moves; the charter's momentum carries
// that step on, and by round 3 the model's weights pass float32's 3.4e38.
vi.mock('../../src/federation/attacks.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/federation/attacks.ts')>()
  class Conduct extends real.Conduct {
    override async update (...args: Parameters<InstanceType<typeof real.Conduct>['update']>): ReturnType<InstanceType<typeof real.Conduct>['update']> {
      const update = await super.update(...args)
      if (this.attackAt(args[2]) === undefined) return update
      // Later its own training diverges on that feature (its loss NaN): it signs a finite one.
      if (args[2] !== 1) return { ...update, loss: Number.isFinite(update.loss) ? update.loss : 1 }
      const kernel = update.delta.get('dense0.kernel')
      if (kernel === undefined) throw new Error('no dense0.kernel in the update')
      const [features = 0, fanOut = 0] = kernel.shape
      target.feature = Array.from({ length: features }, (_, f) => f).find(f => !target.used.has(f)) ?? -1
      if (target.feature < 0) throw new Error('every feature is used')
      const data = Float32Array.from(kernel.data)
      data.fill(3.3e38, target.feature * fanOut, (target.feature + 1) * fanOut)
      return { ...update, delta: new Map(update.delta).set('dense0.kernel', { shape: kernel.shape, data }) }
    }
  }
  return { ...real, Conduct }
})

const tensor = (value: number): Weights => new Map([['w', { shape: [2], data: Float32Array.of(value, 1) }]])

describe('a merge whose model would not be finite', () => {
  let sim: Simulation | undefined
  afterEach(async () => { await sim?.close(); sim = undefined })

  it('keeps the parent\'s value where the sum overflows, with no step there to carry on, and merges the rest', () => {
    const state = { charter: undefined, rounds: new Map(), proposals: new Map() } as unknown as FederationState
    const delta = tensor(3e38)
    const merged = mergeRound({ weights: tensor(3e38) }, [{ delta, numSamples: 1 }], state, 1)
    expect([...(merged.weights.get('w')?.data ?? [])]).toEqual([...Float32Array.of(3e38, 2)])
    expect([...(merged.step?.get('w')?.data ?? [])]).toEqual([0, 1])
    // The accepted update itself is left as it was.
    expect([...(delta.get('w')?.data ?? [])]).toEqual([...Float32Array.of(3e38, 1)])
    // A finite one is merged as before.
    expect([...(mergeRound({ weights: tensor(1) }, [{ delta: tensor(2), numSamples: 1 }], state, 1).weights.get('w')?.data ?? [])]).toEqual([3, 2])
  })

  // Found red-teaming (robustness off, a lax tolerance): the update passes its judge, and the momentum
  // the charter asks for carries its step on until the sum overflows.
  it('leaves the federation on finite models, as every member and the audit derive alike', async () => {
    const config = smallConfig({ agents: 2, rounds: 3, robustness: false, tolerance: 1, momentum: 0.9, task: { kind: 'classify', trainLimit: 900, testLimit: 400, features: 1 << 16 }, attacks: [{ kind: 'label-noise', rate: 0, agent: 2 }] })
    const task = await loadTask(config.task)
    const used = target.used
    // The honest member's examples, train and validation: it never reads or trains that row.
    const [honest] = task.shards(config.agents, { seed: config.seed, partition: config.partition.kind, alpha: config.partition.alpha })
    for (const example of [...honest?.train ?? [], ...honest?.val ?? []]) for (const f of (example as { x: SparseVector }).x.indices) used.add(f)
    sim = await Simulation.create(config, { dir: await tempDir() })
    await sim.charter()
    for (const round of [1, 2, 3]) await sim.round(round)
    const state = sim.participants[0]?.state as FederationState
    // Both members' updates merged every round; the round-3 step would have taken that row past 3.4e38.
    expect([1, 2, 3].map(round => state.accepted(round).length)).toEqual([2, 2, 2])
    const kernel = sim.participants[0]?.globalModel?.weights.get('dense0.kernel')
    const fanOut = kernel?.shape[1] as number
    expect(kernel?.data[target.feature * fanOut]).toBeCloseTo(3.135e38, -36)
    for (const participant of sim.participants) {
      for (const [, t] of participant?.globalModel?.weights ?? new Map()) expect(t.data.every(Number.isFinite)).toBe(true)
    }
    expect(state.global?.round).toBe(3)
    await expectAuditClean(sim)
  }, 120_000)
})
