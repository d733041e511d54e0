import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createContentStore } from '../../src/storage/index.ts'
import { contentStoreTests, SIZES } from '../conformance/content-store.ts'

const url = `http://127.0.0.1:${process.env.KUBO_API_PORT ?? '5001'}`

contentStoreTests('kubo (real daemon)', {
  setup: () => createContentStore({ kind: 'kubo', url }, { dir: '/unused' }),
  teardown: s => s.close()
})

describe('Helia and kubo agree', () => {
  it.each([...SIZES, 5_000_000])('on the CID of %i bytes, and each reads what the other stored', async (size) => {
    const bytes = Uint8Array.from({ length: size }, (_, i) => (i * 2654435761) >>> 24)
    const helia = await createContentStore({ kind: 'helia' }, { dir: await mkdtemp(join(tmpdir(), 'conclave-interop-')) })
    const kubo = await createContentStore({ kind: 'kubo', url }, { dir: '/unused' })
    try {
      const cid = await helia.put(bytes)
      expect(await kubo.put(bytes)).toBe(cid)
      expect(await kubo.get(cid)).toEqual(bytes)
    } finally {
      await helia.close()
      await kubo.close()
    }
  })
})
