import { fnv1a, type SparseVector } from './features.ts'

/**
 * Features of one token in its sentence, hashed into `dims` buckets: the word and its
 * lowercase form, prefixes and suffixes, its shape (Xxxx, dd-x…), and the same for its
 * neighbours two either side. What a linear tagger needs to find chemicals and diseases.
 */
export function tokenFeatures (tokens: readonly string[], i: number, dims: number): SparseVector {
  const feats: string[] = ['bias']
  const at = (k: number): string => tokens[i + k] ?? (k < 0 ? '<s>' : '</s>')
  const w = at(0)
  const lower = w.toLowerCase()
  feats.push(`w=${lower}`, `shape=${shape(w)}`, `p2=${lower.slice(0, 2)}`, `p3=${lower.slice(0, 3)}`, `s2=${lower.slice(-2)}`, `s3=${lower.slice(-3)}`, `s4=${lower.slice(-4)}`)
  if (/^[A-Z]/.test(w)) feats.push('title')
  if (/\d/.test(w)) feats.push('digit')
  if (/-/.test(w)) feats.push('hyphen')
  for (const k of [-2, -1, 1, 2]) {
    const n = at(k)
    feats.push(`w${k}=${n.toLowerCase()}`, `shape${k}=${shape(n)}`, `s3${k}=${n.toLowerCase().slice(-3)}`)
  }
  feats.push(`w-1w=${at(-1).toLowerCase()}|${lower}`, `ww+1=${lower}|${at(1).toLowerCase()}`)
  const buckets = new Map<number, number>()
  for (const f of feats) {
    const b = fnv1a(f) % dims
    buckets.set(b, (buckets.get(b) ?? 0) + 1)
  }
  const indices = Int32Array.from([...buckets.keys()].sort((a, b) => a - b))
  const norm = Math.sqrt(feats.length)
  return { indices, values: Float32Array.from(indices, b => (buckets.get(b) as number) / norm) }
}

/** Word shape: letters to X/x, digits to d, runs collapsed (Aspirin → Xx, IL-2 → X-d). */
function shape (word: string): string {
  return word.replace(/[A-Z]/g, 'X').replace(/[a-z]/g, 'x').replace(/[0-9]/g, 'd').replace(/(.)\1+/g, '$1')
}

