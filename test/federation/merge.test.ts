import { describe, expect, it } from 'vitest'
import { mergeRound } from '../../src/federation/merge.ts'
import type { FederationState } from '../../src/federation/state.ts'
import type { Weights } from '../../src/ml/weights.ts'

const kernel = (...values: number[]): Weights => new Map([['dense/kernel', { shape: [values.length], data: Float32Array.from(values) }]])
/** What mergeRound reads of a state: the charter's rule and momentum, and no proposals beyond those given. */
const charter = (momentum: number): FederationState => ({ charter: { record: { aggregation: 'fedavg', momentum } }, rounds: new Map(), proposals: new Map() }) as unknown as FederationState
const refused = expect.objectContaining({ name: 'InvalidWeightsError', code: 'ERR_INVALID_WEIGHTS' })

// Found red-teaming: the merge added in float32 and never asked whether its sum was finite, so
// members adopted a model of Infinity that the audit, reading the checkpoint back, refused.
describe('a merge of finite updates past float32', () => {
  it('is refused when the merged model overflows (a 2e38 step on a weight already at 2e38, carried by inflated samples): InvalidWeightsError', () => {
    const global = { weights: kernel(0.1, 2e38) }
    const accepted = [{ delta: kernel(0, 2e38), numSamples: 2 ** 31 - 1 }, { delta: kernel(0.01, 0), numSamples: 300 }]
    expect(() => mergeRound(global, accepted, charter(0), 1)).toThrow(refused)
  })

  it('is refused when momentum alone carries an earlier step past float32, though this round\'s updates are small: InvalidWeightsError', () => {
    const parent = { weights: kernel(0.1, 2e38), step: kernel(0, 2e38) }
    expect(() => mergeRound(parent, [{ delta: kernel(0.01, 0), numSamples: 300 }], charter(0.9), 2)).toThrow(refused)
  })

  it('is taken as ever where it stays finite', () => {
    const next = mergeRound({ weights: kernel(0.1, 1), step: kernel(0, 1) }, [{ delta: kernel(0.5, 0), numSamples: 300 }], charter(0.5), 2)
    expect(next).toEqual({ weights: kernel(0.6, 1.5), step: kernel(0.5, 0.5) })
  })
})
