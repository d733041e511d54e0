/**
 * The JWTs whose signature this process has checked and found good, by their exact text:
 * a JWT's signature either verifies or it does not, so the answer can be reused by every
 * participant in the process and by every pass of an audit. A variant that differs in any
 * byte is another key and is checked on its own; failures are never remembered.
 *
 * Bounded both ways, oldest forgotten first: at most `limit` texts and `budget` characters
 * in all, so a flood of valid signatures from throwaway keys costs re-checks, never memory.
 */
export class VerifiedJwts<V = true> {
  readonly limit: number
  readonly budget: number
  readonly #texts = new Map<string, V>()
  #characters = 0

  constructor (limit: number, budget: number) {
    if (!Number.isInteger(limit) || limit < 1 || !Number.isInteger(budget) || budget < 1) {
      throw new RangeError(`a cache of verified JWTs keeps at least one, not ${limit} texts in ${budget} characters`)
    }
    this.limit = limit
    this.budget = budget
  }

  get size (): number { return this.#texts.size }
  get characters (): number { return this.#characters }

  has (text: string): boolean { return this.#texts.has(text) }

  /** What was remembered with `text`, or undefined when it is not (or no longer) known. */
  get (text: string): V | undefined { return this.#texts.get(text) }

  /** Remembers `text` as verified (as the newest), with what it says, forgetting the oldest past either bound. */
  add (text: string, value: V): void {
    if (text.length > this.budget) return
    if (this.#texts.delete(text)) this.#characters -= text.length
    this.#texts.set(text, value)
    this.#characters += text.length
    for (const oldest of this.#texts.keys()) {
      if (this.#texts.size <= this.limit && this.#characters <= this.budget) break
      this.#texts.delete(oldest)
      this.#characters -= oldest.length
    }
  }
}
