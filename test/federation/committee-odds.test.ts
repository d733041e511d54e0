import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { committeeOdds, ground, hypergeometricTail, oddsTables, smallestCommittee } from '../../bench/committee-odds.ts'

describe('the odds that hostile members hold a committee', () => {
  it('computes hypergeometric tails exactly: a hand-checked case and the certain ones', () => {
    // 2 hostile among 4, draw 2: P(both) = 1/6.
    expect(hypergeometricTail(4, 2, 2, 2)).toBeCloseTo(1 / 6, 12)
    expect(hypergeometricTail(19, 3, 5, 0)).toBe(1)
    expect(hypergeometricTail(19, 3, 5, 4)).toBe(0)
  })

  it('agrees with the figures published in trust-design §2.2–2.3', () => {
    const round3 = (o: { capture: number, block: number, perRound: number }): number[] => [o.capture, o.block, o.perRound].map(p => Number(p.toPrecision(2)))
    expect(round3(committeeOdds({ n: 20, h: 4, k: 5, q: 3 }))).toEqual([0.01, 0.037, 0.041])
    expect(round3(committeeOdds({ n: 20, h: 6, k: 7, q: 4 }))).toEqual([0.038, 0.095, 0.21])
    // The note prints 0.39 for this round: 0.385 rounded once more.
    expect(round3(committeeOdds({ n: 100, h: 20, k: 7, q: 4 }))).toEqual([0.024, 0.029, 0.38])
    expect(committeeOdds({ n: 100, h: 20, k: 7, q: 4 }).perRound.toFixed(3)).toBe('0.385')
    expect(round3(committeeOdds({ n: 100, h: 33, k: 3, q: 2 })).slice(0, 2)).toEqual([0.24, 0.26])
    expect(committeeOdds({ n: 100, h: 20, k: 17, q: 9 }).capture.toPrecision(2)).toBe('0.00054')
    // Grinding the per-proposal 0.024 of N = 100, h = 20, k = 7: 0.22 after 10 tries, 0.91 after 100.
    expect([10, 100].map(g => ground(0.024, g).toFixed(2))).toEqual(['0.22', '0.91'])
    expect(smallestCommittee(100, 20, 1e-3)).toEqual({ n: 100, h: 20, k: 17, q: 9 })
    expect(smallestCommittee(100, 20, 1e-6)).toEqual({ n: 100, h: 20, k: 31, q: 16 })
    expect(smallestCommittee(20, 4, 1e-3)).toEqual({ n: 20, h: 4, k: 8, q: 4 })
  })

  it('is exactly 0 both ways when k ≥ 2h and the quorum is half of k', () => {
    for (const [n, h] of [[20, 4], [50, 15], [100, 30]] as const) {
      expect(committeeOdds({ n, h, k: 2 * h, q: h })).toEqual({ capture: 0, block: 0, perRound: 0 })
    }
  })

  it('is what docs/committees.md shows', async () => {
    const doc = await readFile(new URL('../../docs/committees.md', import.meta.url), 'utf8')
    const shown = doc.slice(doc.indexOf('<!-- committee-odds:start -->'), doc.indexOf('<!-- committee-odds:end -->'))
    const tables = shown.split('\n').filter(line => line.startsWith('|')).join('\n')
    expect(tables).toBe(oddsTables().split('\n').filter(line => line.startsWith('|')).join('\n'))
  })
})
