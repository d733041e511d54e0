import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { decodeDelta, encodeDelta, inserted } from '../../src/core/byte-delta.ts'

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)
const items = (from: number, to: number): string => JSON.stringify(Array.from({ length: to - from }, (_, i) => ({ id: `m${from + i}`, content: `message ${from + i} `.repeat(8) })))

describe('byte deltas', () => {
  it('fuzz: any value comes back from any base and its delta', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), fc.uint8Array({ maxLength: 400 }), fc.nat(), (base, next, cut) => {
      // Related pairs as well as unrelated ones: next often reuses a long stretch of base.
      const related = Uint8Array.from([...next.subarray(0, cut % 50), ...base.subarray(cut % (base.length + 1)), ...next.subarray(50)])
      for (const value of [next, related]) expect(decodeDelta(base, encodeDelta(base, value))).toEqual(value)
    }), { numRuns: 2000, seed: 16 })
  })

  it('carries only the new bytes when items are appended, and when a window lets go of its first items and takes new ones', () => {
    const base = bytes(items(0, 60))
    for (const [what, next] of [['appended', items(0, 62)], ['window moved on', items(2, 62)]] as const) {
      const parts = encodeDelta(base, bytes(next))
      expect({ what, value: new TextDecoder().decode(decodeDelta(base, parts)), small: inserted(parts) < 2 * (items(60, 62).length) }).toEqual({ what, value: next, small: true })
    }
  })

  it('refuses a range outside the base', () => {
    expect(() => decodeDelta(bytes('short'), [[0, 99]])).toThrow(RangeError)
    expect(() => decodeDelta(bytes('short'), [[3, 2]])).toThrow(RangeError)
  })
})
