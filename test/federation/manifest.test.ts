import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { manifestBound, manifestText } from '../../src/federation/manifest.ts'

// Found red-teaming the manifest's 64 MiB cap: a long honest run (16 members of a 64 MiB model,
// ~4,400 store files a round) passes it after ~72 rounds, and its own audit then refused it.
describe('the bound on a manifest\'s size, from the entries it lists', () => {
  const text = (dirs: string[], files: Array<{ path: string, size: number }>): number =>
    Buffer.byteLength(manifestText({ manifest: 1, dirs, files: files.map(f => ({ ...f, sha256: 'a'.repeat(64) })) }))

  it('holds for any entries: paths of any characters, sizes up to the largest safe integer', () => {
    const path = fc.string({ minLength: 1, maxLength: 1024, unit: 'binary' })
    fc.assert(fc.property(fc.array(path, { maxLength: 20 }), fc.array(fc.record({ path, size: fc.maxSafeNat() }), { maxLength: 20 }), (dirs, files) => {
      expect(text(dirs, files)).toBeLessThanOrEqual(manifestBound([...dirs, ...files.map(f => f.path)]))
    }), { seed: 14, numRuns: 500 })
  })

  it('lets a store of 320,000 chunk files be listed, which a fixed 64 MiB cap refused', () => {
    const files = Array.from({ length: 320_000 }, (_, i) => ({ path: `store/blocks/7Q/CIQA${String(i).padStart(50, 'X')}7QA.data`, size: 262_144 }))
    const bytes = text(['store', 'store/blocks', 'store/blocks/7Q'], files)
    expect(bytes).toBeGreaterThan(64 * 1024 * 1024)
    expect(bytes).toBeLessThanOrEqual(manifestBound(['store', 'store/blocks', 'store/blocks/7Q', ...files.map(f => f.path)]))
  })
})
