import { fnv1a, type SparseVector } from '../data/features.ts'
import { tokenize13a } from '../metrics/bleu.ts'

/**
 * The generative QA student: a conditional next-token model. Each answer token is a class —
 * end of answer, a word of the answer vocabulary, or "copy the question's i-th token" (so
 * the disease a question names can be said even when no training answer used it) — and
 * is predicted from hashed features of the question and the tokens said so far, by the
 * sparse-softmax model every task shares. Greedy decoding with no repeated trigram.
 * Tokens are sacrebleu's 13a tokens, so what the student says is scored as it was learned.
 */
export const EOS = 0
export const UNK = 1
/** Question positions the student can copy from. */
export const COPY_SLOTS = 32
const FIRST_WORD = 2 + COPY_SLOTS

export interface Vocabulary {
  /** Answer words by decreasing count; class `FIRST_WORD + i` is `words[i]`. */
  words: string[]
  index: Map<string, number>
  /** The most frequent words (function words, punctuation): said from the vocabulary, never copied. */
  common: Set<string>
}

export function fitVocabulary (answers: readonly string[][], options: { maxWords: number, minCount: number, common: number }): Vocabulary {
  const counts = new Map<string, number>()
  for (const answer of answers) for (const w of answer) counts.set(w, (counts.get(w) ?? 0) + 1)
  const words = [...counts].filter(([, n]) => n >= options.minCount)
    .sort(([a, na], [b, nb]) => nb - na || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, options.maxWords).map(([w]) => w)
  return vocabularyOf(words, options.common)
}

/** The vocabulary of these words (most frequent first), the first `common` of them never copied: as fitted, or as an export materialised it. */
export function vocabularyOf (words: readonly string[], common: number): Vocabulary {
  return { words: [...words], index: new Map(words.map((w, i) => [w, FIRST_WORD + i])), common: new Set(words.slice(0, common)) }
}

export const classCount = (v: Vocabulary): number => FIRST_WORD + v.words.length

/** A question as the student reads it. */
export interface Question {
  tokens: string[]
  /** Its first three tokens, lowercased: the template ("what are the", "is x inherited"). */
  head: string
  /** Distinct lowercased tokens. */
  bag: string[]
}

export function readQuestion (text: string): Question {
  const tokens = tokenize13a(text)
  const lower = tokens.map(t => t.toLowerCase())
  return { tokens, head: lower.slice(0, 3).join(' '), bag: [...new Set(lower)] }
}

/** What has been said so far: surface tokens, and for each the question position it was copied from (−1: none). */
export interface Said {
  tokens: string[]
  copied: number[]
}

/** The class the student should emit for `word` after `said`: copy from the question where the word is there and not common. */
function targetOf (v: Vocabulary, q: Question, word: string): { cls: number, copied: number } {
  const at = v.common.has(word) ? -1 : q.tokens.slice(0, COPY_SLOTS).indexOf(word)
  if (at >= 0) return { cls: 2 + at, copied: at }
  return { cls: v.index.get(word) ?? UNK, copied: -1 }
}

/** The surface token a class stands for, given the question (undefined for EOS/UNK or a slot past its end). */
export function surfaceOf (v: Vocabulary, q: Question, cls: number): string | undefined {
  if (cls < 2) return undefined
  if (cls < FIRST_WORD) return q.tokens[cls - 2]
  return v.words[cls - FIRST_WORD]
}

/** Training rows of one (question, answer): a feature row and a class per answer token, then EOS unless cut at `maxTokens`. */
export function answerRows (v: Vocabulary, q: Question, answer: readonly string[], maxTokens: number, dims: number): { x: SparseVector[], y: number[] } {
  const said: Said = { tokens: [], copied: [] }
  const x: SparseVector[] = []
  const y: number[] = []
  for (const word of answer.slice(0, maxTokens)) {
    const { cls, copied } = targetOf(v, q, word)
    x.push(stepFeatures(q, said, dims))
    y.push(cls)
    said.tokens.push(word)
    said.copied.push(copied)
  }
  if (answer.length <= maxTokens) { x.push(stepFeatures(q, said, dims)); y.push(EOS) }
  return { x, y }
}

/** A soft target: classes with probabilities summing to 1. */
export type SoftTarget = Array<[cls: number, p: number]>

/**
 * The teacher's distribution at each answer word, in the student's classes, where it can be
 * read off: the word must be exactly one token the teacher said, and each of that token's
 * candidates counts for the class its text names (a word the vocabulary has, or a copy of a
 * question word); candidates that name none drop out. Undefined where the word is not one
 * teacher token (a piece of one, or several), or where less than
 * `minMass` of the teacher's probability names a class. `topK` as a teacher gives it: per
 * generated token, candidates with log-probabilities, the generated one first.
 */
export function softTargets (v: Vocabulary, q: Question, target: readonly string[], topK: ReadonlyArray<ReadonlyArray<readonly [string, number]>>, options: { maxTokens: number, minMass?: number }): Array<SoftTarget | undefined> {
  const pieces = topK.map(c => c[0]?.[0] ?? '')
  const raw = pieces.join('')
  // Where each teacher token's visible text starts in the answer (after its leading spaces).
  const startsAt = new Map<number, number>()
  let at = 0
  pieces.forEach((piece, k) => {
    const lead = piece.length - piece.trimStart().length
    if (piece.trim() !== '') startsAt.set(at + lead, k)
    at += piece.length
  })
  const out: Array<SoftTarget | undefined> = []
  let cursor = 0
  for (const word of target.slice(0, options.maxTokens)) {
    const pos = raw.indexOf(word, cursor)
    // Only where the word is exactly the token the teacher said: its rivals are then words too.
    const starting = pos < 0 ? undefined : startsAt.get(pos)
    const k = starting !== undefined && pieces[starting]?.trim() === word ? starting : undefined
    if (pos >= 0) cursor = pos + word.length
    const mass = new Map<number, number>()
    for (const [text, logp] of k === undefined ? [] : topK[k] ?? []) {
      const name = text.trim()
      if (name === '') continue
      const { cls } = targetOf(v, q, name)
      if (cls !== UNK) mass.set(cls, (mass.get(cls) ?? 0) + Math.exp(logp))
    }
    const total = [...mass.values()].reduce((a, b) => a + b, 0)
    out.push(total < (options.minMass ?? 0.1) ? undefined : [...mass].map(([cls, p]) => [cls, p / total]))
  }
  return out
}

const bucket = (t: number): string => (t < 4 ? String(t) : t < 8 ? '4-7' : t < 16 ? '8-15' : t < 32 ? '16-31' : '32+')

/** Hashed features for the next token: the question (template, words, length) and the last three tokens said, alone and with the template. */
export function stepFeatures (q: Question, said: Said, dims: number): SparseVector {
  const t = said.tokens.length
  const w = (k: number): string => (said.tokens[t - k] ?? '<s>').toLowerCase()
  const lastCopy = said.copied[t - 1] ?? -1
  const pos = bucket(t)
  const feats: Array<[string, number]> = [
    ['bias', 1], [`pos=${pos}`, 1], [`qh=${q.head}`, 1], [`qh=${q.head}|pos=${pos}`, 1],
    [`p1=${w(1)}`, 1], [`p2=${w(2)} ${w(1)}`, 1], [`p3=${w(3)} ${w(2)} ${w(1)}`, 1],
    [`qh=${q.head}|p1=${w(1)}`, 1], [`qh=${q.head}|p2=${w(2)} ${w(1)}`, 1],
    [`copy=${lastCopy}`, 1], [`copyleft=${lastCopy < 0 ? -1 : Math.min(8, q.tokens.length - 1 - lastCopy)}`, 1], [`qlen=${Math.min(24, q.tokens.length)}`, 1]
  ]
  const share = 1 / Math.sqrt(Math.max(1, q.bag.length))
  for (const word of q.bag) feats.push([`qw=${word}`, share])
  const buckets = new Map<number, number>()
  for (const [f, value] of feats) {
    const b = fnv1a(f) % dims
    buckets.set(b, (buckets.get(b) ?? 0) + value)
  }
  const indices = Int32Array.from([...buckets.keys()].sort((a, b) => a - b))
  return { indices, values: Float32Array.from(indices, b => buckets.get(b) as number) }
}

/**
 * Greedy decoding of many questions at once. `logits` scores a batch of feature rows
 * (rows × classes); at each step every unfinished answer takes its best class that is not
 * UNK, not a copy slot past the question's end and not a trigram it already said.
 */
export function greedyDecode (v: Vocabulary, questions: readonly Question[], logits: (rows: SparseVector[]) => Float32Array, options: { maxTokens: number, dims: number }): string[][] {
  const classes = classCount(v)
  const said: Said[] = questions.map(() => ({ tokens: [], copied: [] }))
  let open = questions.map((_, i) => i)
  for (let step = 0; step < options.maxTokens && open.length > 0; step++) {
    const scores = logits(open.map(i => stepFeatures(questions[i] as Question, said[i] as Said, options.dims)))
    open = open.filter((i, r) => {
      const q = questions[i] as Question
      const s = said[i] as Said
      const row = scores.subarray(r * classes, (r + 1) * classes)
      // Best first: take the arg-max, and rule it out if it may not be said (rarely more than twice).
      for (;;) {
        let cls = 0
        for (let c = 1; c < classes; c++) if ((row[c] as number) > (row[cls] as number)) cls = c
        if (cls === EOS || row[cls] === Number.NEGATIVE_INFINITY) return false
        const word = surfaceOf(v, q, cls)
        if (word === undefined || repeatsTrigram(s.tokens, word)) { row[cls] = Number.NEGATIVE_INFINITY; continue }
        s.tokens.push(word)
        s.copied.push(cls < FIRST_WORD ? cls - 2 : -1)
        return true
      }
    })
  }
  return said.map(s => s.tokens)
}

function repeatsTrigram (tokens: readonly string[], next: string): boolean {
  const n = tokens.length
  if (n < 2) return false
  const a = tokens[n - 2] as string
  const b = tokens[n - 1] as string
  for (let i = 0; i + 2 < n; i++) if (tokens[i] === a && tokens[i + 1] === b && tokens[i + 2] === next) return true
  return false
}
