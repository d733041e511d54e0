import { AgentPausedError } from '../src/core/errors.ts'

/**
 * A researcher's `!pause` as the agent's tools see it: while it lasts every tool call is
 * refused, so a turn under way when it came takes no further action; `settled` waits for
 * the calls that were already running, after which the agent does nothing until `!resume`.
 */
export class Pause {
  /** True from `!pause` until `!resume`. */
  on = false
  readonly #agent: string
  readonly #running = new Set<Promise<unknown>>()

  constructor (agent: string) { this.#agent = agent }

  /** Runs a tool call, or refuses it while paused. */
  readonly guard = async <T>(call: () => Promise<T>): Promise<T> => {
    if (this.on) throw new AgentPausedError(`${this.#agent} is paused: it takes no action until !resume`)
    const running = call()
    this.#running.add(running)
    try {
      return await running
    } finally {
      this.#running.delete(running)
    }
  }

  /** Resolves once every tool call running now has ended, however it ended. */
  async settled (): Promise<void> {
    await Promise.allSettled([...this.#running])
  }
}
