import { setTimeout as sleep } from 'node:timers/promises'
import { NoCheckpointError } from '../core/errors.ts'
import type { AbortOptions, ProgressOptions } from '../core/options.ts'
import type { Driver } from './driver.ts'
import type { Participant } from './participant.ts'
import type { ProposalEntry } from './state.ts'

/**
 * When a round moves on. In one process (`conclave run`) all work is this process's own,
 * so waiting means letting it settle; a member process (`conclave agent`) waits on the wall
 * clock for the other members' records to arrive.
 */
export interface Clock {
  /** Unix seconds: what records are signed at and blocks dated by. */
  now(): number
  /** Lets the work just started run its course before the next proposer starts. */
  settle(): Promise<void>
  /** Resolves true once `done()` holds, or false once `seconds` passed without it. */
  until(done: () => boolean, seconds: number, options?: AbortOptions): Promise<boolean>
}

/** A settling clock, which can be set forward to a time (the newest block's, on resuming). */
export interface SettlingClock extends Clock {
  notBefore(seconds: number): void
}

/**
 * The clock of a federation in one process: nothing happens unless this process does it, so
 * once settled, what has not happened will not, and the time waited for passes at once: the
 * clock moves on by it (the ledger's and the records' times with it), so a window that ran out
 * unfilled has run out on the ledger too.
 */
export function settlingClock (settle: () => Promise<void>): SettlingClock {
  let ahead = 0
  const now = (): number => Math.floor(Date.now() / 1000) + ahead
  return {
    now,
    settle,
    until: async (done, seconds) => {
      await settle()
      if (done()) return true
      ahead += Math.ceil(seconds)
      return false
    },
    notBefore: seconds => { ahead += Math.max(0, seconds - now()) }
  }
}

/**
 * The clock of a member process: polls every `pollMs` until done or the time is up,
 * rethrowing the participant's faults and its driver's failure as soon as they happen (not
 * once the window has passed: a member whose agent broke ends instead of waiting it out).
 */
export function wallClock (participant: Pick<Participant, 'idle'>, { pollMs = 200, driver }: { pollMs?: number, driver?: Pick<Driver, 'failure'> } = {}): Clock {
  return {
    now: () => Math.floor(Date.now() / 1000),
    settle: async () => {}, // the other members run on their own
    until: async (done, seconds, { signal } = {}) => {
      const deadline = Date.now() + seconds * 1000
      while (!done()) {
        signal?.throwIfAborted()
        if (driver?.failure !== undefined) throw driver.failure
        await participant.idle()
        if (Date.now() > deadline) return false
        await sleep(pollMs, undefined, { signal }).catch(() => signal?.throwIfAborted())
      }
      return true
    }
  }
}

/** A participant this process runs, and what decides for it. */
export interface Seat { participant: Participant, driver: Driver }

export type RoundProgress =
  | { type: 'conclave:round:start', round: number, rounds: number }
  | { type: 'conclave:round:propose', round: number, agent: string }

export interface RoundOptions extends AbortOptions, ProgressOptions<RoundProgress> {}

/** How a round went: whether every proposal and vote came in before its window closed, and how long it took. */
export interface RoundOutcome { full: boolean, wallSeconds: number }

export interface RoundLoopInit {
  /** The participants of this process with their drivers, read anew each time (a restart replaces one). */
  seats: () => readonly Seat[]
  /** Members of the federation: a round is full once each proposed and each judge voted on each proposal. */
  members: number
  /** How long a round waits for its proposals' votes, and then for its checkpoint. */
  windowSeconds: number
  clock: Clock
  /** Have every proposer's driver prepare the round before the first opens it: where training runs on worker threads, members then train at once. @default false */
  ahead?: boolean
}

/**
 * The rounds of a federation, the same for every caller: drivers open a round (the
 * autopilot proposes at once, an agent when it decides), votes come in until every peer
 * voted or the window passed, then every participant closes the round (its recorder
 * anchors the decisions and checkpoint) and the loop waits for the checkpoint.
 */
export class RoundLoop {
  readonly #init: RoundLoopInit

  constructor (init: RoundLoopInit) {
    this.#init = init
  }

  /** Rounds `from` to `to`; `onRound` sees each once it is checkpointed. */
  async run ({ from, to }: { from: number, to: number }, options: RoundOptions & { onRound: (round: number, outcome: RoundOutcome) => Promise<void> | void }): Promise<void> {
    for (let round = from; round <= to; round++) {
      options.signal?.throwIfAborted()
      options.onProgress?.({ type: 'conclave:round:start', round, rounds: to })
      await options.onRound(round, await this.round(round, options))
    }
  }

  /** One round, opened and closed. */
  async round (round: number, options: RoundOptions = {}): Promise<RoundOutcome> {
    const start = performance.now()
    await this.open(round, options)
    const { full } = await this.close(round, options)
    return { full, wallSeconds: (performance.now() - start) / 1000 }
  }

  /** The round's first half: each proposer's driver opens it, one after another. */
  async open (round: number, options: RoundOptions & { proposers?: readonly Participant[] } = {}): Promise<void> {
    const seats = this.#init.seats().filter(s => options.proposers === undefined || options.proposers.includes(s.participant))
    if (this.#init.ahead === true) for (const { driver } of seats) await driver.prepareRound?.(round)
    for (const { participant, driver } of seats) {
      options.onProgress?.({ type: 'conclave:round:propose', round, agent: participant.name })
      await driver.openRound(round)
      await this.#init.clock.settle()
    }
  }

  /** The round's second half: waits for its votes, closes it everywhere, and waits for its checkpoint. */
  async close (round: number, options: AbortOptions = {}): Promise<{ full: boolean }> {
    const { seats, windowSeconds, clock } = this.#init
    const start = performance.now()
    // Its first half is the proposal window: a rule that judges updates against their round waits for no one longer.
    if (!await clock.until(() => this.#proposed(round), windowSeconds / 2, options)) {
      for (const { driver } of seats()) await driver.proposalsClosed?.(round)
    }
    const left = Math.max(0, windowSeconds - (performance.now() - start) / 1000)
    const complete = (): boolean => this.#complete(round) && seats().every(s => !s.driver.busy)
    let full = await clock.until(complete, left, options)
    // A decision inside a proposal's window needs every judge's vote (state.ts): with some missing, wait out the last proposal's window.
    // Nor may the round close before it has been open a window, unless every member proposed (state.ts closableAt).
    const closable = this.#init.seats()[0]?.participant.state.closableAt(round) ?? 0
    const due = Math.max(0, closable + 1, ...this.#proposals(round).map(e => e.time + windowSeconds + 1)) - clock.now()
    if (!full && due > 0) full = await clock.until(complete, due, options)
    for (const { driver } of seats()) await driver.idle()
    // Taken before each offer: a record applied while the turns are offered (a vote, another seat's close) wakes the wait after it.
    let offered = this.#progress(round)
    for (const { participant } of seats()) await participant.closeRound(round, options)
    const checkpointed = (): boolean => seats().some(s => (s.participant.state.global?.round ?? 0) >= round)
    // A recorder that never records is stood in for by the members after it, each from its turn (state.ts standbyAt).
    // Every turn that has come is offered again each time: a late proposal moves the turns past an earlier offer, and
    // the recorder's own turn comes again once a proposal anchored as it closed the round may be decided. A record
    // applied meanwhile (the votes on such a proposal) ends the wait: a turn may have come with it.
    for (let everyTurnOffered = false; ;) {
      const next = this.#turns(round).find(turn => turn > clock.now())
      const wait = next !== undefined ? next - clock.now() : everyTurnOffered ? windowSeconds : 0
      if (await clock.until(() => checkpointed() || this.#progress(round) !== offered, wait, options) && checkpointed()) break
      if (next === undefined && everyTurnOffered && this.#progress(round) === offered) throw new NoCheckpointError(`round ${round} got no checkpoint from its recorder or any member standing in for it`)
      const come = this.#turns(round).flatMap((turn, rank) => turn <= clock.now() ? [rank] : [])
      offered = this.#progress(round)
      for (const rank of come) for (const { participant } of seats()) await participant.closeRound(round, { ...options, rank })
      everyTurnOffered = come.length === this.#init.members
    }
    return { full }
  }

  /** What the first seat holds of the round's proposals, votes and decisions: it changes as records of the round are applied. */
  #progress (round: number): string {
    return JSON.stringify(this.#proposals(round).map(e => [e.votes.size, e.humans.size, e.decision !== undefined]))
  }

  /**
   * From when each may record the round, by rank, as the first seat's state has it: the
   * recorder (rank 0) once every open proposal may be decided, each standby (rank 1, 2, …)
   * from its turn.
   */
  #turns (round: number): number[] {
    const state = this.#init.seats()[0]?.participant.state
    if (state === undefined) return Array.from({ length: this.#init.members }, () => Infinity)
    const open = this.#proposals(round).filter(e => e.decision === undefined)
    const recorder = Math.max(state.closableAt(round), ...open.map(e => state.decidableAt(e.block)))
    return [recorder, ...Array.from({ length: this.#init.members - 1 }, (_, i) => state.standbyAt(round, i + 1) ?? Infinity)]
  }

  /** Every member proposed. */
  #proposed (round: number): boolean {
    return (this.#init.seats()[0]?.participant.state.rounds.get(round)?.proposals.length ?? 0) === this.#init.members
  }

  /** The round's proposals, as the first seat holds them. */
  #proposals (round: number): ProposalEntry[] {
    const state = this.#init.seats()[0]?.participant.state
    return (state?.rounds.get(round)?.proposals ?? []).flatMap(id => state?.proposals.get(id) ?? [])
  }

  /** Every member proposed, and every judge (each peer, or its committee) voted on every proposal. */
  #complete (round: number): boolean {
    const state = this.#init.seats()[0]?.participant.state
    const ids = state?.rounds.get(round)?.proposals ?? []
    return ids.length === this.#init.members && ids.every(id => (state?.proposals.get(id)?.votes.size ?? 0) === state?.judges(id).length)
  }
}
