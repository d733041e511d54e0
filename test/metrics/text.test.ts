import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { corpusBleu, tokenize13a } from '../../src/metrics/bleu.ts'
import { entitiesOf, entityScores } from '../../src/metrics/entities.ts'

interface Fixtures {
  ner: Array<{ gold: string[][], predicted: string[][], precision: number, recall: number, f1: number }>
  bleu: Array<{ hypotheses: string[], references: string[], bleu: number, tokenized: string[] }>
}
const fixtures = JSON.parse(await readFile(new URL('../fixtures/text-metrics.json', import.meta.url), 'utf8')) as Fixtures

describe('entity-level F1 (seqeval conventions)', () => {
  it('finds entities the way conlleval does, stray I- tags included', () => {
    expect(entitiesOf(['B-Chemical', 'I-Chemical', 'O', 'I-Disease', 'I-Disease', 'B-Disease', 'I-Chemical'])).toEqual([
      { type: 'Chemical', start: 0, end: 1 },
      { type: 'Disease', start: 3, end: 4 },
      { type: 'Disease', start: 5, end: 5 },
      { type: 'Chemical', start: 6, end: 6 }
    ])
  })

  it('counts an entity only on an exact type and span match (by hand)', () => {
    const s = entityScores([['B-Disease', 'I-Disease', 'O', 'B-Chemical']], [['B-Disease', 'O', 'O', 'B-Chemical']])
    expect({ p: s.precision, r: s.recall, f1: s.f1 }).toEqual({ p: 0.5, r: 0.5, f1: 0.5 })
    expect(s.byType.Chemical).toEqual({ precision: 1, recall: 1, f1: 1, support: 1 })
  })

  it('agrees with seqeval on generated fixtures', () => {
    for (const c of fixtures.ner) {
      const s = entityScores(c.gold, c.predicted)
      expect(s.precision).toBeCloseTo(c.precision, 12)
      expect(s.recall).toBeCloseTo(c.recall, 12)
      expect(s.f1).toBeCloseTo(c.f1, 12)
    }
  })
})

describe('corpus BLEU-4 (sacrebleu conventions)', () => {
  it('tokenises like sacrebleu\'s 13a', () => {
    for (const c of fixtures.bleu) c.tokenized.forEach((t, i) => { expect(tokenize13a(c.references[i] as string).join(' ')).toBe(t) })
    expect(tokenize13a('Take 5-10 mg, twice (daily).')).toEqual(['Take', '5', '-', '10', 'mg', ',', 'twice', '(', 'daily', ')', '.'])
  })

  it('splits where Python\'s str.split() does, after rstrip, as sacrebleu does (a teacher\'s text may hold any whitespace)', () => {
    expect(tokenize13a('see\x85a\x1cdoctor\x1fnow')).toEqual(['see', 'a', 'doctor', 'now'])
    expect(tokenize13a('the ra\ufeffsh')).toEqual(['the', 'ra\ufeffsh'])
    expect(tokenize13a('the rash today-\n')).toEqual(['the', 'rash', 'today-'])
  })

  it('agrees with sacrebleu to 0.01 (0–1 scale) on generated fixtures, and is 1 for identical text', () => {
    for (const c of fixtures.bleu) expect(Math.abs(corpusBleu(c.hypotheses, c.references).bleu - c.bleu)).toBeLessThan(0.0001)
    expect(corpusBleu(['the gene causes the disease .'], ['the gene causes the disease .']).bleu).toBeCloseTo(1, 12)
    expect(corpusBleu(['unrelated'], ['the gene causes the disease'])).toMatchObject({ bleu: 0 })
  })
})
