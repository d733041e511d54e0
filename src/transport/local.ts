import { InvalidRecordError } from '../core/errors.ts'
import { deepFreeze } from '../core/freeze.ts'
import { BusMessage, RoomId, wantsKind, type Bus, type BusHandler } from './index.ts'

/**
 * In-process bus for one machine. Delivery runs through one promise chain, so handlers
 * see messages one at a time in publish order, as a Matrix timeline would. Given a `clock`
 * (Unix seconds), each delivery says when the bus took its message, as a Matrix room does.
 */
export function createLocalBus ({ clock }: { clock?: () => number } = {}): Bus {
  const rooms = new Map<string, Set<BusHandler>>()
  let delivered: Promise<void> = Promise.resolve()
  let closed = false

  return {
    async publish (room, message, options = {}) {
      options.signal?.throwIfAborted()
      if (closed) throw new InvalidRecordError('bus is closed')
      // One frozen copy for every handler (a round of 100 members delivers each record 100 times):
      // the schema's parse builds it anew from the publisher's object, field by field, so neither
      // the publisher nor a handler can change what the others see.
      const valid = deepFreeze(parse(room, message))
      const delivery = clock === undefined ? undefined : { at: clock() }
      const handlers = [...rooms.get(room) ?? []]
      // Queued, not awaited: a handler that publishes in turn must not wait on itself.
      delivered = delivered.then(async () => {
        for (const handler of handlers) {
          try {
            await handler(valid, delivery)
          } catch {
            // A failing handler is the subscriber's problem; the others still get the message.
          }
        }
      })
    },
    async subscribe (room, handler, options = {}) {
      options.signal?.throwIfAborted()
      RoomId.parse(room)
      let set = rooms.get(room)
      if (set === undefined) rooms.set(room, set = new Set())
      const kinds = options.kinds === undefined ? undefined : new Set(options.kinds)
      const wrapped: BusHandler = (m, delivery) => wantsKind(kinds, m) ? handler(m, delivery) : undefined
      set.add(wrapped)
      return { unsubscribe: () => { set.delete(wrapped) } }
    },
    async close () {
      closed = true
      rooms.clear()
      await delivered
    }
  }
}

function parse (room: string, message: unknown): BusMessage {
  if (!RoomId.safeParse(room).success) throw new InvalidRecordError(`"${room}" is not a room id`)
  const result = BusMessage.safeParse(message)
  if (!result.success) throw new InvalidRecordError(`not a bus message: ${result.error.issues[0]?.message ?? 'invalid'}`)
  return result.data
}
