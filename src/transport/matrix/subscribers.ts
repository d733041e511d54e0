import { wantsKind, type BusHandler, type BusMessage, type Delivery, type MessageKind, type Subscription } from '../index.ts'

/** Messages held for a room until someone listens for their kind, at most this many… */
const HELD_PER_ROOM = 10_000
/**
 * …and at most this many bytes (as JSON): 10,000 full-size records would be 160 MiB a room.
 * Room for the count's worth of ordinary blocks (~1.5 KiB each), so only a flood of large
 * messages meets this bound first.
 */
export const HELD_BYTES_PER_ROOM = 32 * 1024 * 1024

interface Subscriber { handler: BusHandler, kinds?: ReadonlySet<MessageKind> }
interface Held { message: BusMessage, delivery?: Delivery }

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
  readonly #held = new Map<string, { messages: Array<Held & { bytes: number }>, bytes: number }>()
  #delivery: Promise<void> = Promise.resolve()
  /** Work subscribers acked (Delivery.ack) that has not settled yet. */
  readonly #acked = new Set<Promise<void>>()

  listening (roomId: string): boolean {
    return (this.#subscribers.get(roomId)?.size ?? 0) > 0
  }

  deliver (roomId: string, message: BusMessage, delivery?: Delivery): void {
    const targets = [...this.#subscribers.get(roomId) ?? []].filter(s => wants(s, message))
    if (targets.length > 0) return this.#queue(targets, [{ message, delivery }])
    const held = this.#held.get(roomId) ?? { messages: [], bytes: 0 }
    this.#held.set(roomId, held)
    // The earliest are kept (a `!resume` sent before a flood still reaches the agent); what does not fit is dropped.
    if (held.messages.length >= HELD_PER_ROOM) return
    const bytes = JSON.stringify(message).length
    if (held.bytes + bytes > HELD_BYTES_PER_ROOM) return
    held.messages.push({ message, delivery, bytes })
    held.bytes += bytes
  }

  /** Adds a subscriber for `kinds` (absent: every kind); what was held for those kinds goes to it first, in order. */
  add (roomId: string, handler: BusHandler, kinds?: readonly MessageKind[]): Subscription {
    let set = this.#subscribers.get(roomId)
    if (set === undefined) this.#subscribers.set(roomId, set = new Set())
    const subscriber: Subscriber = { handler, ...(kinds === undefined ? {} : { kinds: new Set(kinds) }) }
    set.add(subscriber)
    const held = this.#held.get(roomId)?.messages ?? []
    const mine = held.filter(h => wants(subscriber, h.message))
    const left = held.filter(h => !wants(subscriber, h.message))
    if (left.length > 0) this.#held.set(roomId, { messages: left, bytes: left.reduce((n, h) => n + h.bytes, 0) })
    else this.#held.delete(roomId)
    if (mine.length > 0) this.#queue([subscriber], mine)
    return { unsubscribe: () => { set.delete(subscriber) } }
  }

  /** Resolves when every message handed over so far has been delivered. */
  async idle (): Promise<void> {
    await this.#delivery
  }

  /** Resolves when every message handed over so far has been delivered, and the work subscribers acked for them has settled. */
  async handled (): Promise<void> {
    await this.#delivery
    await Promise.all([...this.#acked])
  }

  readonly #ack = (work: Promise<unknown>): void => {
    const settled = work.then(() => {}, () => {})
    this.#acked.add(settled)
    void settled.then(() => this.#acked.delete(settled))
  }

  #queue (targets: Subscriber[], messages: Held[]): void {
    this.#delivery = this.#delivery.then(async () => {
      for (const { message, delivery } of messages) {
        for (const { handler } of targets) { try { await handler(structuredClone(message), { ...delivery, ack: this.#ack }) } catch { /* the subscriber's problem */ } }
      }
    })
  }
}
