import { describe, expect, it } from 'vitest'
import type { Bus, BusMessage } from '../../src/transport/index.ts'

export interface BusFactory {
  /** Two handles on the same network (two participants); for the local bus, the same object. */
  setup: () => Promise<{ a: Bus, b: Bus }>
  teardown: (buses: { a: Bus, b: Bus }) => Promise<void>
  /** How long to wait for remote delivery. @default 0 */
  settleMs?: number
}

const record = (n: number): BusMessage => ({ kind: 'record', block: `block-${String(n).padStart(4, '0')}`, jwt: `jwt.${n}.sig` })

/** Every Bus implementation runs this: local in unit tests, Matrix in integration tests. */
export function busTests (name: string, factory: BusFactory): void {
  describe(`Bus conformance: ${name}`, () => {
    const settle = async (): Promise<void> => { await new Promise(resolve => setTimeout(resolve, factory.settleMs ?? 0)) }

    it('delivers typed messages to subscribers of the room, in publish order', async () => {
      const buses = await factory.setup()
      try {
        const seen: BusMessage[] = []
        await buses.b.subscribe('room-1', m => { seen.push(m) })
        for (let i = 0; i < 5; i++) await buses.a.publish('room-1', record(i))
        await settle()
        expect(seen).toEqual([0, 1, 2, 3, 4].map(record))
      } finally { await factory.teardown(buses) }
    })

    it('keeps rooms apart', async () => {
      const buses = await factory.setup()
      try {
        const seen: string[] = []
        await buses.b.subscribe('room-1', () => { seen.push('room-1') })
        await buses.b.subscribe('room-2', () => { seen.push('room-2') })
        await buses.a.publish('room-2', record(1))
        await settle()
        expect(seen).toEqual(['room-2'])
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
        const seen: BusMessage[] = []
        await buses.b.subscribe('room-1', () => { throw new Error('subscriber bug') })
        await buses.b.subscribe('room-1', m => { seen.push(m) })
        await buses.a.publish('room-1', record(7))
        await settle()
        expect(seen).toEqual([record(7)])
      } finally { await factory.teardown(buses) }
    })

    it('stops delivering after unsubscribe', async () => {
      const buses = await factory.setup()
      try {
        const seen: BusMessage[] = []
        const sub = await buses.b.subscribe('room-1', m => { seen.push(m) })
        await buses.a.publish('room-1', record(1))
        await settle()
        sub.unsubscribe()
        await buses.a.publish('room-1', record(2))
        await settle()
        expect(seen).toEqual([record(1)])
      } finally { await factory.teardown(buses) }
    })

    it('carries chat messages with threading', async () => {
      const buses = await factory.setup()
      try {
        const seen: BusMessage[] = []
        await buses.b.subscribe('room-1', m => { seen.push(m) })
        const chat: BusMessage = { kind: 'chat', from: '@alice:localhost', body: '@agent-2 !status', id: 'm1', inReplyTo: 'm0' }
        await buses.a.publish('room-1', chat)
        await settle()
        expect(seen).toEqual([chat])
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
