import { z } from 'zod'
import { DatasetError } from '../core/errors.ts'
import type { SparseVector } from './features.ts'

/** Lowercase word tokens: runs of letters/digits, with inner hyphens and apostrophes kept (`il-2`). */
export function tokenize (text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9][a-z0-9'-]*[a-z0-9]|[a-z0-9]/g) ?? []
}

export const TfidfOptions = z.object({
  /** A term must occur in at least this many training documents. @default 2 */
  minCount: z.number().int().min(1).default(2),
  /** Keep at most this many terms, the most frequent (by document frequency) first. @default 20000 */
  maxSize: z.number().int().min(1).max(1 << 20).default(20_000)
}).strict()
export type TfidfOptions = z.input<typeof TfidfOptions>

/** A vocabulary and its inverse document frequencies, fitted on a training split. */
export interface Tfidf {
  /** Terms by decreasing document frequency, ties in code-unit order; a term's feature id is its position. */
  readonly terms: readonly string[]
  /** Smoothed IDF per feature id: ln((1 + n) / (1 + df)) + 1, as scikit-learn's default. */
  readonly idf: Float32Array
  /** (1 + ln tf) · idf over in-vocabulary terms, L2-normalised; ids ascending. Unknown words are dropped. */
  transform(text: string): SparseVector
}

/**
 * Fits the vocabulary and IDF on `texts` (the training split only: never on the data it
 * will be scored on). Deterministic: the same texts and options give the same ids.
 */
export function fitTfidf (texts: readonly string[], options: TfidfOptions = {}): Tfidf {
  const { minCount, maxSize } = TfidfOptions.parse(options)
  if (texts.length === 0) throw new DatasetError('cannot fit a vocabulary on no documents')
  const df = new Map<string, number>()
  for (const text of texts) {
    for (const term of new Set(tokenize(text))) df.set(term, (df.get(term) ?? 0) + 1)
  }
  const terms = [...df].filter(([, n]) => n >= minCount)
    .sort(([a, na], [b, nb]) => nb - na || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, maxSize)
    .map(([term]) => term)
  const n = texts.length
  return tfidfOf(terms, Float32Array.from(terms, t => Math.log((1 + n) / (1 + (df.get(t) as number))) + 1))
}

/** A fitted vocabulary and IDF, as fitTfidf made them or as an export materialised them: the same features either way. */
export function tfidfOf (terms: readonly string[], idf: Float32Array): Tfidf {
  if (idf.length !== terms.length) throw new DatasetError(`a vocabulary of ${terms.length} terms needs as many IDF weights, not ${idf.length}`)
  const index = new Map(terms.map((t, i) => [t, i]))
  return {
    terms,
    idf,
    transform (text: string): SparseVector {
      const counts = new Map<number, number>()
      for (const token of tokenize(text)) {
        const id = index.get(token)
        if (id !== undefined) counts.set(id, (counts.get(id) ?? 0) + 1)
      }
      const indices = Int32Array.from([...counts.keys()].sort((a, b) => a - b))
      const weights = Array.from(indices, id => (1 + Math.log(counts.get(id) as number)) * (idf[id] as number))
      let norm = 0
      for (const w of weights) norm += w * w
      norm = Math.sqrt(norm) || 1
      return { indices, values: Float32Array.from(weights, w => w / norm) }
    }
  }
}
