import { createHook, executionAsyncResource, type AsyncHook } from 'node:async_hooks'
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

/** How a timer charges the instants when spans of several phases are open at once (participants of one process overlap). */
export const PhaseAttribution = z.enum(['innermost', 'precise'])
export type PhaseAttribution = z.infer<typeof PhaseAttribution>

/**
 * Accumulates time per phase, so the protocol's overhead is measured, not guessed. Phases
 * never nest: while a phase runs inside another (`anchor` inside `vote`, `merge` inside
 * `fetchVerify`), the time is the inner one's alone, so each instant is counted once and
 * the phases add up to no more than the time that passed.
 *
 * `innermost` (the default) charges each instant to the span opened last that is still
 * open. Where participants share a thread that misattributes: one member's training, resumed
 * after another member opened an anchor span, is charged to the anchor. `precise` follows
 * each span's code across its awaits (node:async_hooks: a callback runs for the span that
 * scheduled it) and charges the time JavaScript runs to the span it runs for, code outside
 * every span to none, and only the gaps when no JavaScript runs (waiting on the disk, say)
 * to the innermost span. The hooks slow a run (by about a fifth on classify): benchmarks ask
 * for it, runs do not.
 */
export class PhaseTimer {
  #seconds = zeroPhases()
  /** Phases running now, innermost last; the innermost is charged for the time since `#mark` (`precise`: for the gaps only). */
  readonly #open: Span[] = []
  #mark = 0
  readonly #precise: boolean

  constructor (attribution: PhaseAttribution = 'innermost') {
    this.#precise = attribution === 'precise'
  }

  async time<T> (phase: Phase, work: () => Promise<T> | T): Promise<T> {
    const span: Span = { phase, timer: this }
    if (!this.#precise) {
      this.#charge()
      this.#open.push(span)
      try {
        return await work()
      } finally {
        this.#charge()
        this.#open.splice(this.#open.indexOf(span), 1)
      }
    }
    precise.start(this)
    const outer = precise.enter(span)
    this.#open.push(span)
    try {
      // What `work` starts before its first await runs here, for the span; its awaits carry the span on.
      const pending = work()
      precise.enter(outer)
      return await pending
    } finally {
      precise.enter(outer)
      this.#open.splice(this.#open.indexOf(span), 1)
    }
  }

  /** The phase of the span opened last that is still open: the one the innermost rule charges now. */
  get innermost (): Phase | undefined {
    return this.#open.at(-1)?.phase
  }

  /**
   * Done with: a precise timer stops being charged and lets the process's hook go (disabled
   * once no precise timer is left, so a long-lived process that runs federation after
   * federation keeps neither the timers nor the hook's cost on every callback).
   */
  close (): void {
    if (this.#precise) precise.release(this)
  }

  /** Returns the time spent since the last call and starts again from zero. */
  take (): PhaseSeconds {
    if (this.#precise) precise.settle()
    else this.#charge()
    const taken = this.#seconds
    this.#seconds = zeroPhases()
    return taken
  }

  /** Gives the time since the last mark to the innermost open phase (none: nobody's). */
  #charge (): void {
    const now = performance.now()
    this.chargeInnermost(now - this.#mark)
    this.#mark = now
  }

  /** `ms` to the innermost open phase (none: nobody's). */
  chargeInnermost (ms: number): void {
    const innermost = this.#open.at(-1)
    if (innermost !== undefined) this.#seconds[innermost.phase] += ms / 1000
  }

  /** `ms` to `phase` (precise attribution). */
  charge (phase: Phase, ms: number): void {
    this.#seconds[phase] += ms / 1000
  }
}

interface Span { phase: Phase, timer: PhaseTimer }

const SPAN = Symbol('conclave.phase-span')
type Tagged = Record<symbol, Span | undefined>
/** Code outside every span (an agent's graph, a handler nobody timed). */
const OUTSIDE = undefined
/** No JavaScript runs: the process waits (or V8 collects garbage). */
const IDLE = null

/**
 * The precise timers' shared bookkeeping: which span's code runs now, and since when. One
 * per process, as the thread is; the hook is installed once the first precise span opens.
 */
const precise = new (class {
  #hook?: AsyncHook
  readonly #timers = new Set<PhaseTimer>()
  /** The span whose code runs now; OUTSIDE or IDLE. Nested callbacks stack. */
  #running: Span | typeof OUTSIDE | typeof IDLE = IDLE
  readonly #stack: Array<Span | typeof OUTSIDE | typeof IDLE> = []
  #mark = performance.now()

  start (timer: PhaseTimer): void {
    this.#timers.add(timer)
    this.#hook ??= createHook({
      init: (_id, _type, _trigger, resource) => {
        if (this.#running) (resource as Tagged)[SPAN] = this.#running
      },
      before: () => {
        this.#stack.push(this.#running)
        this.#switch((executionAsyncResource() as Tagged | undefined)?.[SPAN] ?? OUTSIDE)
      },
      after: () => { this.#switch(this.#stack.pop() ?? IDLE) }
    }).enable()
  }

  release (timer: PhaseTimer): void {
    this.settle()
    this.#timers.delete(timer)
    if (this.#timers.size > 0) return
    this.#hook?.disable()
    this.#hook = undefined
    // Nothing is attributed until a precise span opens again, and then from scratch.
    this.#running = IDLE
    this.#stack.length = 0
  }

  /** How many precise timers the hook serves now (0: none, and the hook is off). */
  get timers (): number {
    return this.#timers.size
  }

  /** Runs what follows for `span` (synchronously, until the caller switches back); returns what ran before. */
  enter (span: Span | typeof OUTSIDE | typeof IDLE): Span | typeof OUTSIDE | typeof IDLE {
    const before = this.#running
    this.#switch(span)
    return before
  }

  /** Charges the time up to now, so a take reads it. */
  settle (): void {
    this.#switch(this.#running)
  }

  #switch (next: Span | typeof OUTSIDE | typeof IDLE): void {
    const now = performance.now()
    const ms = now - this.#mark
    this.#mark = now
    const was = this.#running
    this.#running = next
    if (was === IDLE) for (const timer of this.#timers) timer.chargeInnermost(ms)
    else if (was !== OUTSIDE) was.timer.charge(was.phase, ms)
  }
})()

/** How many precise timers this process's async hook serves (0: the hook is off). */
export function preciseTimersOpen (): number {
  return precise.timers
}
