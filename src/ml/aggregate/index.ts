import { InvalidWeightsError } from '../../core/errors.ts'
import type { AggregationRule } from '../../core/records.ts'
import type { Weights } from '../weights.ts'
import { fedavg } from './fedavg.ts'
import { fedavgShare } from './fedavg-share.ts'
import { fedavgSparse } from './fedavg-sparse.ts'
import { krum, multiKrum } from './krum.ts'
import { median } from './median.ts'
import { trimmedMean } from './trimmed-mean.ts'
import { trustWeighted } from './trust-weighted.ts'

/** One accepted update: its delta, how many examples it was trained on, and how much its judges trusted it. */
export interface Update {
  delta: Weights
  numSamples: number
  /** Mean validation-metric gain its voters measured (trust-weighted rule only). */
  trust?: number
}

/** Voting decides which updates merge; a rule decides how. Each rule is one small file. */
export type AggregationFn = (updates: readonly Update[], round: { proposedSamples: number }) => Weights

const RULES: Record<AggregationRule, AggregationFn> = {
  fedavg,
  'fedavg-share': (u, round) => fedavgShare(u, round.proposedSamples),
  'fedavg-sparse': fedavgSparse,
  median,
  'trimmed-mean': u => trimmedMean(u, 0.2),
  krum: u => krum(u, Math.floor((u.length - 1) / 3)),
  'multi-krum': u => multiKrum(u, { byzantine: Math.floor((u.length - 1) / 3), keep: Math.max(1, u.length - Math.floor((u.length - 1) / 3)) }),
  'trust-weighted': trustWeighted
}

/**
 * The merged delta of `updates`, in the order given (callers sort for reproducibility).
 * `proposedSamples`: the samples behind every proposal of the round, accepted or not (default: the updates').
 */
export function aggregate (updates: readonly Update[], options: { rule: AggregationRule, proposedSamples?: number }): Weights {
  if (updates.length === 0) throw new InvalidWeightsError('nothing to aggregate')
  return RULES[options.rule](updates, { proposedSamples: options.proposedSamples ?? updates.reduce((n, u) => n + u.numSamples, 0) })
}
