import type { BusHandler, BusMessage, Subscription } from '../index.ts'

/** Messages held for a room nobody subscribes to yet, at most this many. */
const HELD_PER_ROOM = 10_000

/**
 * Each room's subscribers, served one message at a time in timeline order through one
 * promise chain; each handler gets its own copy, and one that throws does not stop the
 * others. Messages for a room nobody has subscribed to yet (a restarted agent catching up
 * before it subscribes) are held and handed to its first subscriber.
 */
export class Subscribers {
  readonly #handlers = new Map<string, Set<BusHandler>>() // Matrix room id → handlers
  readonly #held = new Map<string, BusMessage[]>()
  #delivery: Promise<void> = Promise.resolve()

  listening (roomId: string): boolean {
    return (this.#handlers.get(roomId)?.size ?? 0) > 0
  }

  deliver (roomId: string, message: BusMessage): void {
    const targets = [...this.#handlers.get(roomId) ?? []]
    if (targets.length > 0) return this.#queue(targets, [message])
    const held = this.#held.get(roomId) ?? []
    if (held.length < HELD_PER_ROOM) held.push(message)
    this.#held.set(roomId, held)
  }

  add (roomId: string, handler: BusHandler): Subscription {
    let set = this.#handlers.get(roomId)
    if (set === undefined) this.#handlers.set(roomId, set = new Set())
    const wrapped: BusHandler = m => handler(m)
    set.add(wrapped)
    const held = this.#held.get(roomId) ?? []
    this.#held.delete(roomId)
    if (held.length > 0) this.#queue([wrapped], held)
    return { unsubscribe: () => { set.delete(wrapped) } }
  }

  /** Resolves when every message handed over so far has been delivered. */
  async idle (): Promise<void> {
    await this.#delivery
  }

  #queue (targets: BusHandler[], messages: BusMessage[]): void {
    this.#delivery = this.#delivery.then(async () => {
      for (const m of messages) {
        for (const h of targets) { try { await h(structuredClone(m)) } catch { /* the subscriber's problem */ } }
      }
    })
  }
}
