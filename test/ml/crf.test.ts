import * as tf from '@tensorflow/tfjs'
import { describe, expect, it } from 'vitest'
import { Rng } from '../../src/data/rng.ts'
import { bioChain, chainDecode, chainNll, chainTokenEntropy, type ChainScores } from '../../src/ml/crf.ts'
import { chainScores, initSoftmax, softmaxLogits, trainSoftmax } from '../../src/ml/sparse-softmax.ts'
import { initBackend } from '../../src/ml/backend.ts'

const tags = ['B-Chemical', 'B-Disease', 'I-Chemical', 'I-Disease', 'O']
const chain = bioChain(tags)
const C = tags.length

function random (rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => 4 * rng.next() - 2)
}

/** Every tag sequence of length n the chain admits, with its score: the reference by enumeration. */
function enumerate (emissions: Float32Array, n: number, scores: ChainScores): Array<{ path: number[], score: number }> {
  const out: Array<{ path: number[], score: number }> = []
  const walk = (path: number[], score: number): void => {
    if (path.length === n) { out.push({ path, score }); return }
    const t = path.length
    for (let c = 0; c < C; c++) {
      const prev = path.at(-1)
      if (prev === undefined ? !chain.first[c] : !chain.follows[prev]?.[c]) continue
      const move = prev === undefined ? scores.start[c] as number : scores.transitions[prev * C + c] as number
      walk([...path, c], score + move + (emissions[t * C + c] as number))
    }
  }
  walk([], 0)
  return out
}

const logSumExp = (xs: number[]): number => { const m = Math.max(...xs); return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0)) }

function nllByEnumeration (emissions: Float32Array, labels: number[], scores: ChainScores): number {
  const all = enumerate(emissions, labels.length, scores)
  const gold = all.find(a => a.path.join() === labels.join())
  if (gold === undefined) throw new Error('gold path not admitted')
  return logSumExp(all.map(a => a.score)) - gold.score
}

const zeros = (): { emissions: Float32Array, start: Float32Array, transitions: Float32Array } => ({ emissions: new Float32Array(4 * C), start: new Float32Array(C), transitions: new Float32Array(C * C) })

describe('linear-chain CRF', () => {
  const rng = new Rng(7)
  const emissions = random(rng, 4 * C)
  const scores = { start: random(rng, C), transitions: random(rng, C * C) }
  const labels = [1, 3, 4, 0] // B-Disease I-Disease O B-Chemical

  it('admits BIO: I-X only after B-X or I-X, never first', () => {
    expect(chain.first).toEqual([true, true, false, false, true])
    expect(chain.follows[0]).toEqual([true, true, true, false, true]) // after B-Chemical: not I-Disease
    expect(chain.follows[4]).toEqual([true, true, false, false, true]) // after O: no I-
    expect(chain.follows[3]?.[3]).toBe(true)
  })

  it('gives the negative log-likelihood the enumeration of every admitted sequence gives', () => {
    const got = chainNll(chain, emissions, 0, labels, scores, zeros())
    expect(got).toBeCloseTo(nllByEnumeration(emissions, labels, scores), 4)
    expect(chainNll(chain, emissions, 0, labels, scores)).toBe(got) // without gradients: the same likelihood
    // A sequence starting at a later row reads its own rows.
    const shifted = Float32Array.from([...random(rng, 2 * C), ...emissions])
    expect(chainNll(chain, shifted, 2, labels, scores, { ...zeros(), emissions: new Float32Array(6 * C) })).toBeCloseTo(got, 5)
  })

  it('gives gradients that match finite differences of the likelihood', () => {
    const grad = zeros()
    chainNll(chain, emissions, 0, labels, scores, grad)
    const h = 1e-2
    const numeric = (bump: (d: number) => ChainScores & { emissions: Float32Array }): number =>
      (nllByEnumeration(bump(h).emissions, labels, bump(h)) - nllByEnumeration(bump(-h).emissions, labels, bump(-h))) / (2 * h)
    const withDelta = (which: 'emissions' | 'start' | 'transitions', i: number) => (d: number) => {
      const copy = { emissions: emissions.slice(), start: scores.start.slice(), transitions: scores.transitions.slice() }
      copy[which][i] = (copy[which][i] as number) + d
      return copy
    }
    for (const i of [0, 6, 8, 13, 19]) expect(grad.emissions[i]).toBeCloseTo(numeric(withDelta('emissions', i)), 3)
    for (const i of [0, 1, 4]) expect(grad.start[i]).toBeCloseTo(numeric(withDelta('start', i)), 3)
    for (const i of [1 * C + 3, 3 * C + 4, 4 * C + 0, 0 * C + 2]) expect(grad.transitions[i]).toBeCloseTo(numeric(withDelta('transitions', i)), 3)
    expect(grad.transitions[4 * C + 2]).toBe(0) // O → I-Chemical is never taken
  })

  it('decodes the best admitted sequence (Viterbi = enumeration)', () => {
    for (let trial = 0; trial < 20; trial++) {
      const e = random(rng, 4 * C)
      const s = { start: random(rng, C), transitions: random(rng, C * C) }
      const best = enumerate(e, 4, s).reduce((a, b) => b.score > a.score ? b : a)
      expect(chainDecode(chain, e, 0, 4, s)).toEqual(best.path)
    }
    // Without learnt scores it only enforces BIO: a per-token argmax of I-Disease, I-Chemical is invalid.
    expect(chainDecode(chain, Float32Array.from([0, 1, 0, 3, 0, 0, 0, 2, 1.5, 0]), 0, 2).map(i => tags[i])).toEqual(['B-Disease', 'I-Disease'])
    expect(chainDecode(chain, new Float32Array(0), 0, 0)).toEqual([])
  })

  it('measures how unsure it is of each tag: the entropies of the tokens\' marginals, as enumeration gives them', () => {
    for (let trial = 0; trial < 10; trial++) {
      const n = 1 + (trial % 4)
      const e = random(rng, n * C)
      const s = { start: random(rng, C), transitions: random(rng, C * C) }
      const all = enumerate(e, n, s)
      const logZ = logSumExp(all.map(a => a.score))
      let expected = 0
      for (let t = 0; t < n; t++) {
        for (let c = 0; c < C; c++) {
          const p = all.filter(a => a.path[t] === c).reduce((sum, a) => sum + Math.exp(a.score - logZ), 0)
          if (p > 0) expected -= p * Math.log(p)
        }
      }
      // A sequence starting at a later row reads its own rows.
      expect(chainTokenEntropy(chain, Float32Array.from([...random(rng, C), ...e]), 1, n, s)).toBeCloseTo(expected, 5)
    }
    // One token, no learnt scores, equal emissions: every tag BIO lets start (B-Chemical, B-Disease, O) is equally likely.
    expect(chainTokenEntropy(chain, new Float32Array(C), 0, 1, { start: new Float32Array(C), transitions: new Float32Array(C * C) })).toBeCloseTo(Math.log(3), 12)
    // A chain sure of every tag is sure: near 0.
    const sure = Float32Array.from({ length: 3 * C }, (_, i) => i % C === 4 ? 50 : 0)
    expect(chainTokenEntropy(chain, sure, 0, 3, { start: new Float32Array(C), transitions: new Float32Array(C * C) })).toBeLessThan(1e-15)
    expect(chainTokenEntropy(chain, emissions, 0, 0, scores)).toBe(0)
  })

  it('refuses gold tags that break the rule', () => {
    expect(() => chainNll(chain, emissions, 0, [4, 2, 4, 4], scores, zeros())).toThrow(RangeError)
  })

  it('learns from context a per-token softmax cannot see', async () => {
    await initBackend({})
    // "q" is I-X after "p" once and O after "r" three times; its features are only its own word,
    // so a per-token model calls it O everywhere; the CRF learns B-X → I-X.
    const small = ['B-X', 'I-X', 'O']
    const word = (w: string) => ({ indices: Int32Array.of({ p: 0, q: 1, r: 2 }[w] as number), values: Float32Array.of(1) })
    const sentences = [[['p', 'B-X'], ['q', 'I-X']], ...Array.from({ length: 3 }, () => [['r', 'O'], ['q', 'O']])]
    const rows = sentences.flatMap(s => s.map(([w]) => word(w as string)))
    const labels = sentences.flatMap(s => s.map(([, t]) => small.indexOf(t as string)))
    const training = { epochs: 150, batchSize: 4, learningRate: 0.1, seed: 1, sequences: sentences.map(s => s.length) }
    const decodeAll = (shape: { chain?: typeof chain }, weights: Parameters<typeof chainScores>[0]): string[][] => {
      const logits = softmaxLogits({ features: 3, hidden: 0, classes: 3, ...shape }, weights, rows)
      return sentences.map((s, k) => chainDecode(bioChain(small), logits, 2 * k, 2, shape.chain === undefined ? undefined : chainScores(weights)).map(i => small[i] as string))
    }
    const withChain = { features: 3, hidden: 0, classes: 3, chain: bioChain(small) }
    const before = tf.memory().numTensors
    const crf = await trainSoftmax(withChain, initSoftmax(withChain, 1), rows, labels, training)
    expect(tf.memory().numTensors).toBe(before)
    expect(decodeAll(withChain, crf.weights)).toEqual(sentences.map(s => s.map(([, t]) => t)))
    const plain = { features: 3, hidden: 0, classes: 3 }
    const softmax = await trainSoftmax(plain, initSoftmax(plain, 1), rows, labels, training)
    expect(decodeAll({}, softmax.weights)[0]).toEqual(['B-X', 'O'])
    // Same seed, same weights; sequences must cover the rows.
    expect((await trainSoftmax(withChain, initSoftmax(withChain, 1), rows, labels, training)).weights).toEqual(crf.weights)
    await expect(trainSoftmax(withChain, initSoftmax(withChain, 1), rows, labels, { ...training, sequences: [2, 2] })).rejects.toThrow(RangeError)
  })
})
