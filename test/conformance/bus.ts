import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import type { Bus, BusMessage } from '../../src/transport/index.ts'

export interface BusFactory {
  /** Two handles on the same network (two participants); for the local bus, the same object. */
  setup: () => Promise<{ a: Bus, b: Bus }>
  teardown: (buses: { a: Bus, b: Bus }) => Promise<void>
  /** How long a message may take to arrive before the suite calls it lost. @default 5000 */
  deliveryMs?: number
}

const record = (n: number): BusMessage => ({ kind: 'record', block: `block-${String(n).padStart(4, '0')}`, jwt: `jwt.${n}.sig` })

/**
 * One subscription's messages as they arrive. `arrived(n)` resolves when the n-th comes (an
 * event, not a sleep) and fails once `deliveryMs` pass without it. That nothing else came is
 * checked against a witness: a later message whose arrival proves an earlier one would have.
 */
function inbox (deliveryMs: number): { messages: BusMessage[], handler: (m: BusMessage) => void, arrived: (n: number) => Promise<BusMessage[]> } {
  const messages: BusMessage[] = []
  const arrivals = new EventTarget()
  return {
    messages,
    handler: (m) => {
      messages.push(m)
      arrivals.dispatchEvent(new Event('message'))
    },
    async arrived (n) {
      const signal = AbortSignal.timeout(deliveryMs)
      while (messages.length < n) {
        await once(arrivals, 'message', { signal }).catch(() => { throw new Error(`${messages.length} of ${n} messages arrived within ${deliveryMs} ms`) })
      }
      return messages
    }
  }
}

/** Every Bus implementation runs this: local in unit tests, Matrix in integration tests. */
export function busTests (name: string, factory: BusFactory): void {
  describe(`Bus conformance: ${name}`, () => {
    const newInbox = (): ReturnType<typeof inbox> => inbox(factory.deliveryMs ?? 5000)

    it('delivers typed messages to subscribers of the room, in publish order', async () => {
      const buses = await factory.setup()
      try {
        const seen = newInbox()
        await buses.b.subscribe('room-1', seen.handler)
        for (let i = 0; i < 5; i++) await buses.a.publish('room-1', record(i))
        expect(await seen.arrived(5)).toEqual([0, 1, 2, 3, 4].map(record))
      } finally { await factory.teardown(buses) }
    })

    it('keeps rooms apart', async () => {
      const buses = await factory.setup()
      try {
        const [one, two] = [newInbox(), newInbox()]
        await buses.b.subscribe('room-1', one.handler)
        await buses.b.subscribe('room-2', two.handler)
        await buses.a.publish('room-2', record(1))
        await buses.a.publish('room-1', record(2)) // the witness: room-1 hears this, and only this
        await Promise.all([one.arrived(1), two.arrived(1)])
        expect({ one: one.messages, two: two.messages }).toEqual({ one: [record(2)], two: [record(1)] })
      } finally { await factory.teardown(buses) }
    })

    it('hands a subscriber for some kinds only messages of those kinds', async () => {
      const buses = await factory.setup()
      try {
        const [records, chat] = [newInbox(), newInbox()]
        await buses.b.subscribe('room-1', records.handler, { kinds: ['record'] })
        await buses.b.subscribe('room-1', chat.handler, { kinds: ['chat'] })
        const said: BusMessage = { kind: 'chat', from: 'agent-1', body: 'hello', id: 'c1' }
        await buses.a.publish('room-1', said)
        await buses.a.publish('room-1', record(1)) // the witness: the chat subscriber never hears it
        await buses.a.publish('room-1', { ...said, body: 'again', id: 'c2' })
        await Promise.all([records.arrived(1), chat.arrived(2)])
        expect(records.messages).toEqual([record(1)])
        expect(chat.messages.map(m => m.kind === 'chat' ? m.body : m.kind)).toEqual(['hello', 'again'])
      } finally { await factory.teardown(buses) }
    })

    it('refuses malformed messages and bad room ids with InvalidRecordError', async () => {
      const buses = await factory.setup()
      try {
        await expect(buses.a.publish('room-1', { kind: 'record', block: 'x', jwt: '' } as BusMessage)).rejects.toMatchObject({ name: 'InvalidRecordError' })
        await expect(buses.a.publish('room-1', { kind: 'gossip' } as unknown as BusMessage)).rejects.toMatchObject({ name: 'InvalidRecordError' })
        await expect(buses.a.publish('bad room!', record(1))).rejects.toMatchObject({ name: 'InvalidRecordError' })
        await expect(buses.a.publish('room-1', { kind: 'record', block: 'block-0001', jwt: 'x'.repeat(20_000) })).rejects.toMatchObject({ name: 'InvalidRecordError' })
      } finally { await factory.teardown(buses) }
    })

    it('goes on delivering to others when one handler throws', async () => {
      const buses = await factory.setup()
      try {
        const seen = newInbox()
        await buses.b.subscribe('room-1', () => { throw new Error('subscriber bug') })
        await buses.b.subscribe('room-1', seen.handler)
        await buses.a.publish('room-1', record(7))
        expect(await seen.arrived(1)).toEqual([record(7)])
      } finally { await factory.teardown(buses) }
    })

    it('lets neither the publisher nor a handler change what another handler sees', async () => {
      const buses = await factory.setup()
      try {
        const seen = newInbox()
        await buses.b.subscribe('room-1', (m) => {
          // Refused (a shared, frozen message) or made on a copy of its own: either way no one else sees it.
          try { (m as { block: string }).block = 'block-evil' } catch {}
        })
        await buses.b.subscribe('room-1', seen.handler)
        const sent = record(8)
        await buses.a.publish('room-1', sent)
        ;(sent as { block: string }).block = 'block-late'
        expect(await seen.arrived(1)).toEqual([record(8)])
      } finally { await factory.teardown(buses) }
    })

    it('stops delivering after unsubscribe', async () => {
      const buses = await factory.setup()
      try {
        const [seen, witness] = [newInbox(), newInbox()]
        const sub = await buses.b.subscribe('room-1', seen.handler)
        await buses.b.subscribe('room-1', witness.handler) // stays subscribed: what it gets, `seen` would have got
        await buses.a.publish('room-1', record(1))
        await seen.arrived(1)
        sub.unsubscribe()
        await buses.a.publish('room-1', record(2))
        await witness.arrived(2)
        expect(seen.messages).toEqual([record(1)])
      } finally { await factory.teardown(buses) }
    })

    it('carries chat messages with threading, from the sender the bus vouches for', async () => {
      const buses = await factory.setup()
      try {
        const seen = newInbox()
        await buses.b.subscribe('room-1', seen.handler)
        const chat: BusMessage = { kind: 'chat', from: '@alice:localhost', body: '@agent-2 !status', id: 'm1', inReplyTo: 'm0' }
        await buses.a.publish('room-1', chat)
        // A bus that vouches for the sender names the message too: nobody may pass theirs off as another's to be answered.
        expect(await seen.arrived(1)).toEqual([{ ...chat, from: buses.a.sender ?? chat.from, id: buses.a.sender === undefined ? chat.id : expect.not.stringMatching(/^m1$/) }])
      } finally { await factory.teardown(buses) }
    })

    it('honours an aborted signal', async () => {
      const buses = await factory.setup()
      try {
        await expect(buses.a.publish('room-1', record(1), { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' })
      } finally { await factory.teardown(buses) }
    })
  })
}
