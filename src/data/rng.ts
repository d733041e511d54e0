/**
 * A small seeded PRNG (mulberry32) so partitions, initial weights and batch order are
 * reproducible from one seed. Not for cryptography.
 */
export class Rng {
  #state: number

  constructor (seed: number) {
    this.#state = seed >>> 0
  }

  /** Uniform in [0, 1). */
  next (): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0
    let t = this.#state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Uniform integer in [0, n). */
  int (n: number): number {
    return Math.floor(this.next() * n)
  }

  /** Fisher–Yates, in place. */
  shuffle<T> (items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const tmp = items[i] as T
      items[i] = items[j] as T
      items[j] = tmp
    }
    return items
  }

  /** Standard normal (Box–Muller). */
  normal (): number {
    const u = 1 - this.next()
    const v = this.next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }

  /** Gamma(shape, 1) by Marsaglia–Tsang. */
  gamma (shape: number): number {
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(this.next(), 1 / shape)
    const d = shape - 1 / 3
    const c = 1 / Math.sqrt(9 * d)
    for (;;) {
      const x = this.normal()
      const v = Math.pow(1 + c * x, 3)
      if (v > 0 && Math.log(1 - this.next()) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v
    }
  }

  /** A draw from Dirichlet(α, …, α) over k categories. */
  dirichlet (k: number, alpha: number): number[] {
    const g = Array.from({ length: k }, () => this.gamma(alpha))
    const sum = g.reduce((a, b) => a + b, 0)
    return g.map(x => x / sum)
  }
}

/** Mixes several integers into one 32-bit seed (for per-agent, per-round seeds). */
export function mixSeed (...parts: number[]): number {
  let h = 0x811c9dc5
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x01000193) >>> 0
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0
  }
  return h >>> 0
}
