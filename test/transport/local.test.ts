import { describe, expect, it } from 'vitest'
import { createBus, type Delivery } from '../../src/transport/index.ts'
import { createLocalBus } from '../../src/transport/local.ts'
import { busTests } from '../conformance/bus.ts'

busTests('local', {
  setup: async () => {
    const bus = await createBus({ kind: 'local' })
    return { a: bus, b: bus }
  },
  teardown: async ({ a }) => { await a.close() }
})

describe('the local bus\'s time', () => {
  it('given a clock, tells every subscriber when it took each message, as a Matrix room does; without one, nothing', async () => {
    let now = 1_800_000_000
    for (const clock of [() => now, undefined]) {
      const bus = createLocalBus({ clock })
      const seen: Array<Delivery | undefined> = []
      for (let i = 0; i < 2; i++) await bus.subscribe('room', (_, delivery) => { seen.push(delivery) })
      await bus.publish('room', { kind: 'want', block: 'a'.repeat(64) })
      now += 7
      await bus.publish('room', { kind: 'want', block: 'b'.repeat(64) })
      await bus.close()
      expect(seen).toEqual(clock === undefined ? [undefined, undefined, undefined, undefined] : [{ at: 1_800_000_000 }, { at: 1_800_000_000 }, { at: 1_800_000_007 }, { at: 1_800_000_007 }])
    }
  })
})
