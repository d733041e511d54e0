import { InvalidWeightsError } from '../../core/errors.ts'
import type { Tensor, Weights } from '../weights.ts'
import type { Update } from './index.ts'

/** FedAvg (McMahan et al. 2017): the sample-weighted mean of the deltas, Σ n_k Δ_k / Σ n_k. */
export function fedavg (updates: readonly Update[]): Weights {
  const total = updates.reduce((n, u) => n + u.numSamples, 0)
  if (!(total > 0)) throw new InvalidWeightsError('FedAvg needs updates with a positive sample count')
  const first = updates[0] as Update
  const out: Weights = new Map()
  for (const [name, t] of first.delta) {
    const sum = new Float64Array(t.data.length)
    for (const u of updates) {
      const d = (u.delta.get(name) as Tensor).data
      const w = u.numSamples / total
      for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + w * (d[i] as number)
    }
    out.set(name, { shape: [...t.shape], data: Float32Array.from(sum) })
  }
  return out
}
