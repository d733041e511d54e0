import { DatasetError } from '../core/errors.ts'
import type { Rng } from './rng.ts'

/** Indices 0..n−1 dealt round-robin after a seeded shuffle: IID parts of near-equal size. */
export function iid (n: number, parts: number, rng: Rng): number[][] {
  if (n < parts) throw new DatasetError(`cannot split ${n} examples into ${parts} non-empty parts`)
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i))
  const out: number[][] = Array.from({ length: parts }, () => [])
  order.forEach((index, i) => { (out[i % parts] as number[]).push(index) })
  return out
}

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
