import { InvalidWeightsError } from '../../core/errors.ts'
import type { Tensor, Weights } from '../weights.ts'
import type { Update } from './index.ts'

/**
 * FedAvg coordinate by coordinate over the updates that send it: Σ n_k Δ_k,i / Σ n_k over the
 * k whose Δ_k,i ≠ 0 (0 where none does). For sparse updates (topk), where each member sends
 * its own tenth of the coordinates: plain FedAvg divides each coordinate by every member's
 * samples, zeros included, so a round moves a sent coordinate about 1/N as far as the
 * dense updates it stands for would. On dense updates it is FedAvg.
 */
export function fedavgSparse (updates: readonly Update[]): Weights {
  if (!(updates.reduce((n, u) => n + u.numSamples, 0) > 0)) throw new InvalidWeightsError('FedAvg needs updates with a positive sample count')
  const first = updates[0] as Update
  const out: Weights = new Map()
  for (const [name, t] of first.delta) {
    const sum = new Float64Array(t.data.length)
    const weight = new Float64Array(t.data.length)
    for (const u of updates) {
      const d = (u.delta.get(name) as Tensor).data
      for (let i = 0; i < sum.length; i++) {
        const v = d[i] as number
        if (v === 0) continue
        sum[i] = (sum[i] as number) + u.numSamples * v
        weight[i] = (weight[i] as number) + u.numSamples
      }
    }
    const data = new Float32Array(sum.length)
    for (let i = 0; i < data.length; i++) if ((weight[i] as number) > 0) data[i] = (sum[i] as number) / (weight[i] as number)
    out.set(name, { shape: [...t.shape], data })
  }
  return out
}
