import { z } from 'zod'

const seconds = z.number().nonnegative()

/** Seconds per protocol phase, in the order a proposal travels them; report.json times each. */
export const PhaseSeconds = z.object({
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

/** Accumulates time per phase, so the protocol's overhead is measured, not guessed. */
export class PhaseTimer {
  #seconds = zeroPhases()

  async time<T> (phase: Phase, work: () => Promise<T> | T): Promise<T> {
    const start = performance.now()
    try {
      return await work()
    } finally {
      this.#seconds[phase] += (performance.now() - start) / 1000
    }
  }

  /** Returns the time spent since the last call and starts again from zero. */
  take (): PhaseSeconds {
    const taken = this.#seconds
    this.#seconds = zeroPhases()
    return taken
  }
}
