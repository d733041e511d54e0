import { wantsKind, type BusHandler, type BusMessage, type MessageKind, type Subscription } from '../index.ts'

/** Messages held for a room until someone listens for their kind, at most this many. */
const HELD_PER_ROOM = 10_000

interface Subscriber { handler: BusHandler, kinds?: ReadonlySet<MessageKind> }

const wants = (s: Subscriber, m: BusMessage): boolean => wantsKind(s.kinds, m)

/**
 * Each room's subscribers, served one message at a time in timeline order through one
 * promise chain; each handler gets its own copy, and one that throws does not stop the
 * others. A subscriber may listen for some kinds only. A message no subscriber listens for
 * yet is held and handed to the first that does: a restarted member opens its ledger copy
 * (which listens for blocks) before its agent listens for chat, and a researcher's
 * `!resume` sent meanwhile must still reach the agent.
 */
export class Subscribers {
  readonly #subscribers = new Map<string, Set<Subscriber>>() // Matrix room id → subscribers
  readonly #held = new Map<string, BusMessage[]>()
  #delivery: Promise<void> = Promise.resolve()

  listening (roomId: string): boolean {
    return (this.#subscribers.get(roomId)?.size ?? 0) > 0
  }

  deliver (roomId: string, message: BusMessage): void {
    const targets = [...this.#subscribers.get(roomId) ?? []].filter(s => wants(s, message))
    if (targets.length > 0) return this.#queue(targets, [message])
    const held = this.#held.get(roomId) ?? []
    if (held.length < HELD_PER_ROOM) held.push(message)
    this.#held.set(roomId, held)
  }

  /** Adds a subscriber for `kinds` (absent: every kind); what was held for those kinds goes to it first, in order. */
  add (roomId: string, handler: BusHandler, kinds?: readonly MessageKind[]): Subscription {
    let set = this.#subscribers.get(roomId)
    if (set === undefined) this.#subscribers.set(roomId, set = new Set())
    const subscriber: Subscriber = { handler, ...(kinds === undefined ? {} : { kinds: new Set(kinds) }) }
    set.add(subscriber)
    const held = this.#held.get(roomId) ?? []
    const mine = held.filter(m => wants(subscriber, m))
    const left = held.filter(m => !wants(subscriber, m))
    if (left.length > 0) this.#held.set(roomId, left)
    else this.#held.delete(roomId)
    if (mine.length > 0) this.#queue([subscriber], mine)
    return { unsubscribe: () => { set.delete(subscriber) } }
  }

  /** Resolves when every message handed over so far has been delivered. */
  async idle (): Promise<void> {
    await this.#delivery
  }

  #queue (targets: Subscriber[], messages: BusMessage[]): void {
    this.#delivery = this.#delivery.then(async () => {
      for (const m of messages) {
        for (const { handler } of targets) { try { await handler(structuredClone(m)) } catch { /* the subscriber's problem */ } }
      }
    })
  }
}
