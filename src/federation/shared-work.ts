import { createHash } from 'node:crypto'
import { BoundedMap } from '../core/bounded-map.ts'
import type { Weights } from '../ml/weights.ts'
import type { GlobalModel } from './merge.ts'

/** Merges remembered: every participant of a round asks for the same one, a late or restarted one a round or two later. */
const MERGES_KEPT = 4

/** One kind of shared result: those done, bounded, and those being computed now. */
class Once<T> {
  readonly #done: BoundedMap<string, T>
  readonly #inFlight = new Map<string, Promise<T>>()
  /** How many were computed, and how many were taken from another participant's. */
  readonly counts = { computed: 0, shared: 0 }

  constructor (kept: number) {
    this.#done = new BoundedMap(kept)
  }

  /** Computed by the first to ask, shared with the rest; another's failure (its fetch aborted, say) is not mine: then I compute myself. */
  async get (key: string, compute: () => Promise<T>): Promise<T> {
    const done = this.#done.get(key)
    if (done !== undefined) { this.counts.shared++; return done }
    const flight = this.#inFlight.get(key)
    if (flight !== undefined) {
      const shared = await flight.then(value => ({ value }), () => undefined)
      if (shared !== undefined) { this.counts.shared++; return shared.value }
    }
    const mine = compute()
    this.#inFlight.set(key, mine)
    try {
      const value = await mine
      this.counts.computed++
      this.#done.set(key, value)
      return value
    } finally {
      if (this.#inFlight.get(key) === mine) this.#inFlight.delete(key)
    }
  }
}

/**
 * Work whose result cannot differ between the participants of one process, done once for
 * all of them (a simulation's members, which share one content store; never members of
 * separate processes). Only pure derivations from content-addressed inputs belong here,
 * named by every input: the same key can only mean the same result. Never a judgement or
 * a vote: those are each member's own. A shared result is read-only to everyone (weights
 * are never changed in place).
 */
export class SharedWork {
  readonly merges = new Once<GlobalModel>(MERGES_KEPT)
  /** Decoded Δw, by their bytes and how they are read: about a round's proposals. */
  readonly models: Once<Weights>

  /** `members`: how many share this; a round's updates are kept for them. */
  constructor (members: number) {
    this.models = new Once(Math.max(1, members))
  }

  /** The merge `inputs` name (everything the merge reads), done once. */
  async merge (inputs: unknown, compute: () => Promise<GlobalModel>): Promise<GlobalModel> {
    return this.merges.get(keyOf(inputs), compute)
  }

  /** The update `inputs` name (its bytes' CID and sha-256, and how they are decoded), fetched, checked and decoded once. */
  async update (inputs: unknown, compute: () => Promise<Weights>): Promise<Weights> {
    return this.models.get(keyOf(inputs), compute)
  }
}

function keyOf (inputs: unknown): string {
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex')
}
