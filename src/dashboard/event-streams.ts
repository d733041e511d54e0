import type { Writable } from 'node:stream'

/** What a live page's stream needs of its response (node's ServerResponse, or any Writable). */
export type EventSink = Pick<Writable, 'write' | 'writableLength' | 'destroy' | 'end' | 'once'>

/**
 * How far a page may fall behind: bytes waiting for it beyond what it was owed when it
 * opened. A page that stops reading would otherwise hold every event sent after it stalled
 * (found red-teaming). 2 MiB is over ten thousand record events, far more than a reading
 * page ever lags, and MAX_STREAMS stalled pages hold 64 MiB at most. A dropped page's
 * EventSource reconnects with the last id it saw and is sent what it missed.
 */
export const MAX_BEHIND_BYTES = 2 * 1024 * 1024

const SSE_KEEPALIVE_MS = 15_000

/** The live pages' server-sent event streams: each gets every event sent, until it closes or falls too far behind. */
export class EventStreams {
  /** Each open stream, and the most bytes that may wait for it. */
  readonly #open = new Map<EventSink, number>()

  get size (): number { return this.#open.size }

  /** Follows `sink` from now: `backlog` (what it is owed: the events it missed) first, then every event sent. */
  add (sink: EventSink, backlog: string[]): void {
    for (const text of backlog) sink.write(text)
    // A catch-up larger than the bound is owed, not a stall: only falling further behind drops it.
    this.#open.set(sink, sink.writableLength + MAX_BEHIND_BYTES)
    const keepalive = setInterval(() => { this.#deliver(sink, ': keepalive\n\n') }, SSE_KEEPALIVE_MS)
    sink.once('close', () => {
      clearInterval(keepalive)
      this.#open.delete(sink)
    })
  }

  send (text: string): void {
    for (const sink of this.#open.keys()) this.#deliver(sink, text)
  }

  endAll (): void {
    for (const sink of this.#open.keys()) sink.end()
  }

  #deliver (sink: EventSink, text: string): void {
    const allowance = this.#open.get(sink)
    if (allowance === undefined) return
    sink.write(text)
    if (sink.writableLength <= allowance) return
    // Not end(): that too would wait behind what the page does not read.
    this.#open.delete(sink)
    sink.destroy()
  }
}
