import { InvalidWeightsError } from '../../core/errors.ts'
import type { AggregationRule } from '../../core/records.ts'
import type { Weights } from '../weights.ts'
import { fedavg } from './fedavg.ts'

/** One accepted update: its delta and how many examples it was trained on. */
export interface Update {
  delta: Weights
  numSamples: number
}

/** Voting decides which updates merge; a rule decides how. Each rule is one small file. */
export type AggregationFn = (updates: readonly Update[]) => Weights

const RULES: Record<AggregationRule, AggregationFn> = { fedavg }

/** The merged delta of `updates`, in the order given (callers sort for reproducibility). */
export function aggregate (updates: readonly Update[], options: { rule: AggregationRule }): Weights {
  if (updates.length === 0) throw new InvalidWeightsError('nothing to aggregate')
  return RULES[options.rule](updates)
}
