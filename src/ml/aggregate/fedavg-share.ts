import { InvalidWeightsError } from '../../core/errors.ts'
import { mapValues, type Weights } from '../weights.ts'
import { fedavg } from './fedavg.ts'
import type { Update } from './index.ts'

/**
 * FedAvg in which a rejected proposal counts as a zero update: Σ_accepted n_k Δ_k / Σ_proposed n_k.
 * Each accepted update moves the model by its share of the round, the share its judges
 * measured (global + Δw/N), not by a larger one because others were voted down; plain FedAvg
 * over the accepted few would tilt the model towards their owners' labels.
 */
export function fedavgShare (updates: readonly Update[], proposedSamples: number): Weights {
  const accepted = updates.reduce((n, u) => n + u.numSamples, 0)
  if (!(proposedSamples >= accepted)) throw new InvalidWeightsError(`the round's proposals hold ${proposedSamples} samples, fewer than the ${accepted} accepted`)
  const scale = accepted / proposedSamples
  return mapValues(fedavg(updates), v => v * scale)
}
