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
    for (const u of updates) addScaled(sum, u.numSamples / total, (u.delta.get(name) as Tensor).data)
    out.set(name, { shape: [...t.shape], data: Float32Array.from(sum) })
  }
  return out
}

/** sum += w·d (its own function: V8 optimises it whole rather than on-stack inside the loops over tensors and updates). */
function addScaled (sum: Float64Array, w: number, d: Float32Array): void {
  for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + w * (d[i] as number)
}
