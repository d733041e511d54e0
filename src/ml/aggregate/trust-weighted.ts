import { InvalidWeightsError } from '../../core/errors.ts'
import type { Weights } from '../weights.ts'
import { fedavg } from './fedavg.ts'
import type { Update } from './index.ts'

/**
 * Trust-weighted averaging with each participant's own validation data as its root of
 * trust (in the spirit of FLTrust, Cao et al. 2021): an update's weight is its sample
 * count times its trust, the mean improvement it brought to the voters' validation
 * metric, clipped at zero. Updates nobody found helpful get no weight; if none helped,
 * the merge is plain FedAvg of them all (voting already decided they may merge).
 */
export function trustWeighted (updates: readonly Update[]): Weights {
  const trusted = updates.map(u => ({ ...u, numSamples: u.numSamples * Math.max(0, u.trust ?? 0) }))
  if (trusted.some(u => !Number.isFinite(u.numSamples))) throw new InvalidWeightsError('trust must be finite')
  return trusted.some(u => u.numSamples > 0) ? fedavg(trusted.filter(u => u.numSamples > 0)) : fedavg(updates)
}
