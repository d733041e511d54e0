/**
 * `node bench/committee-odds.ts`: the exact odds that hostile members hold a committee's
 * quorum, as docs/committees.md states them (test/federation/committee-odds.test.ts checks
 * that the page shows what this prints). No simulation: the draw ranks peers by a hash, so
 * in the random-oracle model a committee is k members drawn uniformly without replacement
 * from the proposer's N − 1 peers, and each proposer's draw is independent of the others'.
 *
 * The worst case counted: hostile members accept each other's proposals and reject every
 * honest one; honest members do the opposite.
 * - capture: a hostile proposal merges — its committee holds ≥ q of the other h − 1 hostile;
 * - block: an honest proposal fails — its committee holds fewer than q honest members;
 * - per round: at least one of the h hostile proposals of a round is captured;
 * - ground G: per round, when an attacker could try G base models (docs/committees.md).
 */
import { requiredAccepts } from '../src/core/quorum.ts'

/** C(n, r) exactly. */
function choose (n: number, r: number): bigint {
  if (r < 0 || r > n) return 0n
  let out = 1n
  for (let i = 0; i < Math.min(r, n - r); i++) out = out * BigInt(n - i) / BigInt(i + 1)
  return out
}

/** P(X ≥ at least) for X ~ Hypergeometric(population, successes, draws), exact up to the final division. */
export function hypergeometricTail (population: number, successes: number, draws: number, atLeast: number): number {
  let hits = 0n
  for (let x = Math.max(0, atLeast); x <= Math.min(draws, successes); x++) hits += choose(successes, x) * choose(population - successes, draws - x)
  // Scaled before dividing, so tails far below 2^-53 of the total keep their digits.
  const total = choose(population, draws)
  const scale = 10n ** 30n
  return Number(hits * scale / total) / 1e30
}

export interface Setting {
  /** Members. */
  n: number
  /** Hostile members. */
  h: number
  /** Committee size. */
  k: number
  /** Accepts needed within the committee. */
  q: number
}

export interface Odds { capture: number, block: number, perRound: number }

export function committeeOdds ({ n, h, k, q }: Setting): Odds {
  const capture = h === 0 ? 0 : hypergeometricTail(n - 1, h - 1, k, q)
  const block = hypergeometricTail(n - 1, h, k, k - q + 1)
  return { capture, block, perRound: 1 - (1 - capture) ** h }
}

/** The chance that at least one of G independent tries succeeds, each with chance p. */
export function ground (p: number, tries: number): number {
  return 1 - (1 - p) ** tries
}

/** The smallest k (with the q that serves it best) whose capture and block odds are both at most `target`. */
export function smallestCommittee (n: number, h: number, target: number): Setting | undefined {
  for (let k = 1; k < n; k++) {
    for (let q = 1; q <= k; q++) {
      const odds = committeeOdds({ n, h, k, q })
      if (odds.capture <= target && odds.block <= target) return { n, h, k, q }
    }
  }
  return undefined
}

/** The charter's default quorum (half the committee, rounded up): what `committee: k` alone gets. */
export function defaultQuorum (k: number, n: number): number {
  return requiredAccepts({ kind: 'fraction', fraction: 0.5 }, n, k)
}

const fmt = (p: number): string => p === 0 ? '0' : p >= 0.001 ? p.toFixed(3) : p.toExponential(1)

/** The tables docs/committees.md shows, as markdown. */
export function oddsTables (): string {
  const rows = ['| N | h | k | q | P(capture) | P(block) | P(≥ 1 capture per round) | same, G = 10 | G = 100 | G = 1000 |', '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
  for (const n of [20, 50, 100]) {
    for (const share of [0.1, 0.2, 0.3]) {
      const h = Math.round(share * n)
      for (const k of [5, 7, 9]) {
        const q = defaultQuorum(k, n)
        const o = committeeOdds({ n, h, k, q })
        rows.push(`| ${n} | ${h} (${share * 100}%) | ${k} | ${q} | ${fmt(o.capture)} | ${fmt(o.block)} | ${fmt(o.perRound)} | ${fmt(ground(o.perRound, 10))} | ${fmt(ground(o.perRound, 100))} | ${fmt(ground(o.perRound, 1000))} |`)
      }
    }
  }
  const sizes = ['| N | h | target | k | q | P(capture) | P(block) | evaluations per member per round, N − 1 → k |', '|---:|---:|---:|---:|---:|---:|---:|---:|']
  for (const n of [20, 50, 100]) {
    for (const share of [0.1, 0.2, 0.3]) {
      const h = Math.round(share * n)
      for (const target of [1e-3, 1e-6]) {
        const s = smallestCommittee(n, h, target)
        if (s === undefined) {
          sizes.push(`| ${n} | ${h} | ${fmt(target)} | none below N | | | | ${n - 1} |`)
          continue
        }
        const o = committeeOdds(s)
        sizes.push(`| ${n} | ${h} | ${fmt(target)} | ${s.k} | ${s.q} | ${fmt(o.capture)} | ${fmt(o.block)} | ${n - 1} → ${s.k} |`)
      }
    }
  }
  const immune = ['| N | h | k = 2h | q = ⌈k/2⌉ | P(capture) | P(block) | evaluations per member per round, N − 1 → k |', '|---:|---:|---:|---:|---:|---:|---:|']
  for (const n of [20, 50, 100]) {
    for (const share of [0.1, 0.2, 0.3]) {
      const h = Math.round(share * n)
      const k = 2 * h
      const q = defaultQuorum(k, n)
      const o = committeeOdds({ n, h, k, q })
      immune.push(`| ${n} | ${h} | ${k} | ${q} | ${fmt(o.capture)} | ${fmt(o.block)} | ${n - 1} → ${k} |`)
    }
  }
  return [rows, sizes, immune].map(t => t.join('\n')).join('\n\n') + '\n'
}

if (import.meta.main) process.stdout.write(oddsTables())
