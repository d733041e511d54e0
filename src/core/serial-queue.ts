/**
 * Runs tasks one at a time, in order. Each participant has one; a simulation gives all
 * its participants the same one, so on a single thread no agent's work overlaps another's
 * and each protocol phase's measured time is its own.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve()
  #pending = 0

  run<T> (task: () => Promise<T>): Promise<T> {
    this.#pending++
    const result = this.#tail.then(task).finally(() => { this.#pending-- })
    this.#tail = result.catch(() => undefined)
    return result
  }

  get busy (): boolean { return this.#pending > 0 }

  async idle (): Promise<void> {
    while (this.#pending > 0) await this.#tail
  }
}
