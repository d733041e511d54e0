import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { classificationScores, confusionMatrix } from '../../src/metrics/classification.ts'

interface Case { gold: number[], predicted: number[], accuracy: number, microF1: number, macroF1: number }

describe('classification metrics', () => {
  it('match hand-computed values', () => {
    // class 0: tp 1, fp 1, fn 1 → F1 0.5 ; class 1: tp 1, fp 0, fn 1 → 2/3 ; class 2: tp 0, fp 1, fn 0 → 0
    expect(classificationScores([0, 0, 1, 1], [0, 2, 1, 0])).toEqual({ accuracy: 0.5, microF1: 0.5, macroF1: (0.5 + 2 / 3 + 0) / 3 })
  })

  it('count confusions gold × predicted (hand-computed) and refuse out-of-range ids', () => {
    expect(confusionMatrix([0, 0, 1, 1], [0, 2, 1, 0], 3)).toEqual([[1, 0, 1], [1, 1, 0], [0, 0, 0]])
    expect(() => confusionMatrix([0, 3], [0, 0], 3)).toThrow(RangeError)
  })

  it('agree with scikit-learn on the fixtures make-fixtures.py generated', async () => {
    const { cases } = JSON.parse(await readFile(new URL('../fixtures/classification-scores.json', import.meta.url), 'utf8')) as { cases: Case[] }
    for (const c of cases) {
      const scores = classificationScores(c.gold, c.predicted)
      expect(scores.accuracy).toBeCloseTo(c.accuracy, 12)
      expect(scores.microF1).toBeCloseTo(c.microF1, 12)
      expect(scores.macroF1).toBeCloseTo(c.macroF1, 12)
    }
  })
})
