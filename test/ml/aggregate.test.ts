import { describe, expect, it } from 'vitest'
import { aggregate, type Update } from '../../src/ml/aggregate/index.ts'
import { krum, multiKrum } from '../../src/ml/aggregate/krum.ts'
import { median } from '../../src/ml/aggregate/median.ts'
import { trimmedMean } from '../../src/ml/aggregate/trimmed-mean.ts'
import { trustWeighted } from '../../src/ml/aggregate/trust-weighted.ts'
import type { Weights } from '../../src/ml/weights.ts'

const vec = (...values: number[]): Weights => new Map([['w', { shape: [values.length], data: Float32Array.from(values) }]])
const up = (values: number[], numSamples = 1, trust?: number): Update => ({ delta: vec(...values), numSamples, trust })
const values = (w: Weights): number[] => [...(w.get('w')?.data ?? [])]

// Five honest updates near (1, 1) and one attacker far away: every robust rule must
// ignore the attacker; the references below are computed by hand.
const honest = [[1, 1], [1.2, 0.8], [0.8, 1.2], [1.1, 0.9], [0.9, 1.1]]
const attacker = [-50, 100]

describe('robust aggregation rules', () => {
  it('median takes each coordinate\'s middle value (mean of the middle two for even counts)', () => {
    expect(values(median([up([1, 5]), up([3, 2]), up([2, 9])]))).toEqual([2, 5])
    expect(values(median([up([1]), up([4]), up([2]), up([3])]))).toEqual([2.5])
    expect(values(median([...honest, attacker].map(v => up(v))))).toEqual([0.949999988079071, 1.0499999523162842])
  })

  it('trimmed mean drops ⌊βn⌋ from each end per coordinate', () => {
    // n = 5, β = 0.2: drop 1 each end → mean of the middle three.
    expect(values(trimmedMean([up([1]), up([2]), up([3]), up([4]), up([100])], 0.2))).toEqual([3])
    // n = 6 with the attacker: drop 1 each end. x: −50 … 1.2 keeps 0.8, 0.9, 1, 1.1; y: 0.8 … 100 keeps 0.9, 1, 1.1, 1.2.
    const t = values(trimmedMean([...honest, attacker].map(v => up(v)), 0.2))
    expect(t[0]).toBeCloseTo((0.8 + 0.9 + 1 + 1.1) / 4, 6)
    expect(t[1]).toBeCloseTo((0.9 + 1 + 1.1 + 1.2) / 4, 6)
  })

  it('Krum picks the update closest to its n − f − 2 nearest neighbours; multi-Krum averages the best m', () => {
    const updates = [...honest, attacker].map(v => up(v))
    // f = 1: 3 neighbours. (1, 1) is the centre of the honest cluster.
    expect(values(krum(updates, 1))).toEqual([1, 1])
    const m = values(multiKrum(updates, { byzantine: 1, keep: 5 }))
    expect(m[0]).toBeCloseTo(1, 6)
    expect(m[1]).toBeCloseTo(1, 6)
  })

  it('trust-weighted averages by samples × (clipped) measured gain, and falls back to FedAvg when nobody gained', () => {
    expect(values(trustWeighted([up([2], 1, 0.3), up([10], 1, 0.1), up([-90], 5, -0.2)]))).toEqual([4])
    expect(values(trustWeighted([up([2], 1, 0), up([4], 3, -0.1)]))).toEqual([3.5])
  })

  it('fedavg-share counts the round\'s rejected proposals as zero updates', () => {
    // Accepted: 2 and 4 with 1 and 3 samples; rejected proposals held 4 more samples: (1·2 + 3·4) / 8.
    expect(values(aggregate([up([2], 1), up([4], 3)], { rule: 'fedavg-share', proposedSamples: 8 }))).toEqual([1.75])
    // Nothing rejected: FedAvg.
    expect(values(aggregate([up([2], 1), up([4], 3)], { rule: 'fedavg-share' }))).toEqual(values(aggregate([up([2], 1), up([4], 3)], { rule: 'fedavg' })))
    expect(() => aggregate([up([2], 5)], { rule: 'fedavg-share', proposedSamples: 4 })).toThrow(expect.objectContaining({ name: 'InvalidWeightsError' }))
  })

  it('fedavg-sparse averages each coordinate over the updates that send it, and is FedAvg on dense updates', () => {
    // Coordinate 0: 2 (1 sample) and 4 (3 samples); coordinate 1: only the first sends 6; coordinate 2: nobody.
    expect(values(aggregate([up([2, 6, 0], 1), up([4, 0, 0], 3)], { rule: 'fedavg-sparse' }))).toEqual([3.5, 6, 0])
    // FedAvg would move coordinate 1 a quarter as far: 1·6 / 4.
    expect(values(aggregate([up([2, 6, 0], 1), up([4, 0, 0], 3)], { rule: 'fedavg' }))).toEqual([3.5, 1.5, 0])
    const dense = honest.map((v, i) => up(v, i + 1))
    const sparse = values(aggregate(dense, { rule: 'fedavg-sparse' }))
    values(aggregate(dense, { rule: 'fedavg' })).forEach((v, i) => { expect(sparse[i]).toBeCloseTo(v, 6) })
    expect(() => aggregate([up([1], 0)], { rule: 'fedavg-sparse' })).toThrow(expect.objectContaining({ name: 'InvalidWeightsError' }))
  })

  it('is selectable by name, and each rule resists the attacker where FedAvg does not', () => {
    const updates = [...honest, attacker].map(v => up(v))
    const fed = values(aggregate(updates, { rule: 'fedavg' }))
    expect(Math.abs((fed[0] as number) - 1)).toBeGreaterThan(5)
    for (const rule of ['median', 'trimmed-mean', 'krum', 'multi-krum'] as const) {
      const merged = values(aggregate(updates, { rule }))
      expect(Math.abs((merged[0] as number) - 1), rule).toBeLessThan(0.2)
      expect(Math.abs((merged[1] as number) - 1), rule).toBeLessThan(0.2)
    }
  })
})
