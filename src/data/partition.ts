import { ConfigError, DatasetError } from '../core/errors.ts'
import { mixSeed, Rng } from './rng.ts'

/** Indices 0..n−1 dealt round-robin after a seeded shuffle: IID parts of near-equal size. */
export function iid (n: number, parts: number, rng: Rng): number[][] {
  if (n < parts) throw new DatasetError(`cannot split ${n} examples into ${parts} non-empty parts`)
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i))
  const out: number[][] = Array.from({ length: parts }, () => [])
  order.forEach((index, i) => { (out[i % parts] as number[]).push(index) })
  return out
}

/**
 * The largest Dirichlet α a config takes. By 1e6 each class is already split evenly among the
 * parts, so a larger α changes nothing, until, from about 3.6e307, the gamma draws sum to
 * Infinity and the split collapses onto one part.
 */
export const MAX_ALPHA = 1e6

/**
 * Non-IID by label: for each class, its examples are split among the parts in
 * proportions drawn from Dirichlet(α) (small α → each part sees few classes). A part
 * left empty receives one example from the largest part, so every part can train.
 */
export function dirichlet (labels: readonly number[], parts: number, alpha: number, rng: Rng): number[][] {
  if (labels.length < parts) throw new DatasetError(`cannot split ${labels.length} examples into ${parts} non-empty parts`)
  const byClass = new Map<number, number[]>()
  labels.forEach((label, i) => { byClass.set(label, [...(byClass.get(label) ?? []), i]) })
  const out: number[][] = Array.from({ length: parts }, () => [])
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const members = rng.shuffle([...(byClass.get(label) as number[])])
    const shares = rng.dirichlet(parts, alpha)
    let start = 0
    let cumulative = 0
    shares.forEach((share, p) => {
      cumulative += share
      const end = p === parts - 1 ? members.length : Math.round(cumulative * members.length)
      ;(out[p] as number[]).push(...members.slice(start, end))
      start = end
    })
  }
  for (const part of out) {
    if (part.length > 0) continue
    const largest = out.reduce((a, b) => (b.length > a.length ? b : a))
    part.push(largest.pop() as number)
  }
  return out.map(part => part.sort((a, b) => a - b))
}

/** A fixed subset (seed 0) of at most `limit` items, so a limit picks the same ones in every run. */
export function fixedSubset<T> (items: T[], limit?: number): T[] {
  return limit === undefined || limit >= items.length ? items : new Rng(0).shuffle([...items]).slice(0, limit)
}

export interface ShardSplit {
  seed: number
  partition: 'iid' | 'dirichlet'
  alpha?: number
  /** Share of each part held out as its owner's validation set (at least one item). */
  valFraction: number
}

/**
 * Deals `items` to `parts` participants (IID, or Dirichlet non-IID by `labels`) and carves
 * each participant's validation set out of its own part.
 */
export function splitShards<T> (items: readonly T[], labels: readonly number[], parts: number, options: ShardSplit): Array<{ train: T[], val: T[] }> {
  const rng = new Rng(mixSeed(options.seed, 0x5a4d))
  const split = options.partition === 'iid' ? iid(items.length, parts, rng) : dirichlet(labels, parts, options.alpha ?? 1, rng)
  return split.map(indices => {
    const mine = rng.shuffle(indices.map(i => items[i] as T))
    const nVal = Math.max(1, Math.round(mine.length * options.valFraction))
    return { val: mine.slice(0, nVal), train: mine.slice(nVal) }
  })
}

/**
 * A seeded random `fraction` of `items` as dev; both parts keep the file's order. With
 * `groupOf`, whole groups go one way (MedQuAD's foci), so dev shares none with train.
 */
export function carveDev<T> (items: readonly T[], fraction: number, seed: number, groupOf: (item: T, index: number) => string = (_, i) => String(i)): { train: T[], dev: T[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new ConfigError(`dev fraction ${fraction} is not in [0, 1)`)
  const groups = [...new Set(items.map(groupOf))]
  const picked = new Set(new Rng(mixSeed(seed, 0xde7)).shuffle(groups).slice(0, Math.round(groups.length * fraction)))
  const inDev = items.map((item, i) => picked.has(groupOf(item, i)))
  return { train: items.filter((_, i) => !inDev[i]), dev: items.filter((_, i) => inDev[i]) }
}
