import { fnv1a, type SparseVector } from './features.ts'

/**
 * Features of one token in its sentence, hashed into `dims` buckets: the word, its shapes,
 * prefixes and suffixes of 1–5 letters, its letter trigrams, and words, shapes and affixes
 * of its neighbours three either side with the nearest word pairs. `abbreviations` (short →
 * long form, from the token's document so far) adds what an abbreviation stands for.
 * What a linear tagger needs to find chemicals and diseases (chosen on BC5CDR's dev split:
 * docs/results/ner-features.md).
 */
export function tokenFeatures (tokens: readonly string[], i: number, dims: number, abbreviations?: ReadonlyMap<string, string>): SparseVector {
  const at = (k: number): string => tokens[i + k] ?? (k < 0 ? '<s>' : '</s>')
  const word = at(0)
  const lower = word.toLowerCase()
  const feats: string[] = ['bias', `w=${lower}`, `shape=${shape(word)}`, `fullshape=${fullShape(word)}`, `len=${Math.min(lower.length, 12)}`]
  for (let k = 1; k <= Math.min(5, lower.length); k++) feats.push(`p${k}=${lower.slice(0, k)}`, `s${k}=${lower.slice(-k)}`)
  const padded = `^${lower}$`
  for (let k = 0; k + 3 <= padded.length; k++) feats.push(`c3=${padded.slice(k, k + 3)}`)
  if (/^[A-Z]/.test(word)) feats.push('title')
  if (/^[A-Z0-9]+$/.test(word) && /[A-Z]/.test(word)) feats.push('caps')
  if (/\d/.test(word)) feats.push('digit')
  if (/-/.test(word)) feats.push('hyphen')
  for (const k of [-3, -2, -1, 1, 2, 3]) {
    const n = at(k).toLowerCase()
    feats.push(`w${k}=${n}`, `shape${k}=${shape(at(k))}`, `p3${k}=${n.slice(0, 3)}`, `s3${k}=${n.slice(-3)}`, `s4${k}=${n.slice(-4)}`)
  }
  const pair = (a: number, b: number): string => `w${a}w${b}=${at(a).toLowerCase()}|${at(b).toLowerCase()}`
  feats.push(pair(-1, 0), pair(0, 1), pair(-2, -1), pair(1, 2), pair(-1, 1))
  const long = abbreviations?.get(word)
  if (long !== undefined) {
    const words = long.split(' ')
    const last = words.at(-1) as string
    feats.push('abbr', `abbr.first=${words[0] as string}`, `abbr.last=${last}`, `abbr.s3=${last.slice(-3)}`, `abbr.s4=${last.slice(-4)}`)
  }
  const buckets = new Map<number, number>()
  for (const f of feats) {
    const b = fnv1a(f) % dims
    buckets.set(b, (buckets.get(b) ?? 0) + 1)
  }
  const indices = Int32Array.from([...buckets.keys()].sort((a, b) => a - b))
  const norm = Math.hypot(...buckets.values())
  return { indices, values: Float32Array.from(indices, b => (buckets.get(b) as number) / norm) }
}

/** Word shape: letters to X/x, digits to d, runs collapsed (Aspirin → Xx, IL-2 → X-d). */
function shape (word: string): string {
  return fullShape(word).replace(/(.)\1+/g, '$1')
}

/** Word shape with its length kept (IL-2 → XX-d). */
function fullShape (word: string): string {
  return word.replace(/[A-Z]/g, 'X').replace(/[a-z]/g, 'x').replace(/[0-9]/g, 'd')
}
