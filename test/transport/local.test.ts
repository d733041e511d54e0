import { createBus } from '../../src/transport/index.ts'
import { busTests } from '../conformance/bus.ts'

busTests('local', {
  setup: async () => {
    const bus = await createBus({ kind: 'local' })
    return { a: bus, b: bus }
  },
  teardown: async ({ a }) => { await a.close() }
})
