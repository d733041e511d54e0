import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { mapConcurrently } from '../../src/core/concurrently.ts'

describe('mapConcurrently', () => {
  it('returns every result in the order of the items, whatever order the tasks finish in, with at most `limit` running', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.nat(5), { maxLength: 40 }), fc.integer({ min: 1, max: 8 }), async (delays, limit) => {
      let running = 0
      let most = 0
      const out = await mapConcurrently(delays, limit, async (d, i) => {
        most = Math.max(most, ++running)
        for (let k = 0; k < d; k++) await Promise.resolve()
        running--
        return i * 2
      })
      expect(out).toEqual(delays.map((_, i) => i * 2))
      expect(most).toBeLessThanOrEqual(limit)
    }))
  })

  it('rejects with the first failure, and refuses a limit below one', async () => {
    await expect(mapConcurrently([1, 2, 3], 2, async n => { if (n === 2) throw new Error('two'); return n })).rejects.toThrow('two')
    await expect(mapConcurrently([1], 0, async n => n)).rejects.toThrow(RangeError)
  })
})
