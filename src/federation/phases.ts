import { z } from 'zod'

const seconds = z.number().nonnegative()

/**
 * Seconds per phase, in the order a proposal travels them; report.json times each. `model`
 * is the time agents wait on their model to decide a step (0 on autopilot); reports written
 * before it was measured read as 0.
 */
export const PhaseSeconds = z.object({
  model: seconds.default(0),
  distill: seconds,
  train: seconds,
  publish: seconds,
  anchor: seconds,
  announce: seconds,
  fetchVerify: seconds,
  evaluate: seconds,
  vote: seconds,
  merge: seconds
}).strict()
export type PhaseSeconds = z.infer<typeof PhaseSeconds>
export type Phase = keyof PhaseSeconds
export const PHASES = PhaseSeconds.keyof().options

export function zeroPhases (): PhaseSeconds {
  return Object.fromEntries(PHASES.map(p => [p, 0])) as PhaseSeconds
}

/**
 * Accumulates time per phase, so the protocol's overhead is measured, not guessed. Phases
 * never nest: while a phase runs inside another (`anchor` inside `vote`, `merge` inside
 * `fetchVerify`), the time is the inner one's alone, so each instant is counted once and
 * the phases add up to no more than the time that passed.
 */
export class PhaseTimer {
  #seconds = zeroPhases()
  /** Phases running now, innermost last; the innermost is charged for the time since `#mark`. */
  readonly #open: Array<{ phase: Phase }> = []
  #mark = 0

  async time<T> (phase: Phase, work: () => Promise<T> | T): Promise<T> {
    const span = { phase }
    this.#charge()
    this.#open.push(span)
    try {
      return await work()
    } finally {
      this.#charge()
      this.#open.splice(this.#open.indexOf(span), 1)
    }
  }

  /** Returns the time spent since the last call and starts again from zero. */
  take (): PhaseSeconds {
    this.#charge()
    const taken = this.#seconds
    this.#seconds = zeroPhases()
    return taken
  }

  /** Gives the time since the last mark to the innermost open phase (none: nobody's). */
  #charge (): void {
    const now = performance.now()
    const innermost = this.#open.at(-1)
    if (innermost !== undefined) this.#seconds[innermost.phase] += (now - this.#mark) / 1000
    this.#mark = now
  }
}
