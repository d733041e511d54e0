import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import type { ContentStore } from '../../src/storage/index.ts'

export interface ContentStoreFactory {
  setup: () => Promise<ContentStore>
  teardown: (store: ContentStore) => Promise<void>
  /** Closes and opens the same store again (persistent stores). */
  reopen?: (store: ContentStore) => Promise<ContentStore>
}

const random = (n: number, seed: number): Uint8Array => {
  const out = new Uint8Array(n)
  let x = seed >>> 0
  for (let i = 0; i < n; i++) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; out[i] = x >>> 24 }
  return out
}

/** The sizes that cross the chunking boundaries: empty, one byte, exactly one chunk, several chunks. */
export const SIZES = [0, 1, 262_144, 1_048_577]

/**
 * Every ContentStore runs this: Helia in unit tests, kubo against a real daemon in
 * test/integration/kubo.int.test.ts:
 *   contentStoreTests('kubo', { setup: async () => createKuboStore({ url }), teardown: s => s.close() })
 */
export function contentStoreTests (name: string, factory: ContentStoreFactory): void {
  describe(`ContentStore conformance: ${name}`, () => {
    it.each(SIZES)('round-trips %i bytes, and the same bytes give the same CID', async (size) => {
      const store = await factory.setup()
      try {
        const bytes = random(size, size + 1)
        const cid = await store.put(bytes)
        expect(cid).toMatch(/^b[a-z2-7]+$/)
        expect(await store.get(cid)).toEqual(bytes)
        expect(await store.put(bytes)).toBe(cid)
        expect(await store.has(cid)).toBe(true)
      } finally { await factory.teardown(store) }
    })

    it('gives the CID of `ipfs add --cid-version 1`, as multiformats computes it for one raw block', async () => {
      const store = await factory.setup()
      try {
        const bytes = new TextEncoder().encode('hello federation')
        expect(await store.put(bytes)).toBe('bafkreigyghlpe6l7tbxlkrj6upeg4g3ky7vmss5dl3oro4ylsoktmbm27i')
        const other = random(1000, 9)
        expect(await store.put(other)).toBe(CID.createV1(raw.code, await sha256.digest(other)).toString())
      } finally { await factory.teardown(store) }
    })

    it('pins content', async () => {
      const store = await factory.setup()
      try {
        // Fresh random bytes: a persistent store (a long-lived kubo repo) has never seen them.
        const cid = await store.put(randomBytes(300_000))
        expect(await store.isPinned(cid)).toBe(false)
        await store.pin(cid)
        expect(await store.isPinned(cid)).toBe(true)
      } finally { await factory.teardown(store) }
    })

    it('names what it does not hold (ContentNotFoundError) without hanging, and refuses a non-CID (InvalidRecordError)', async () => {
      const store = await factory.setup()
      try {
        const absent = CID.createV1(raw.code, await sha256.digest(random(10, 77))).toString()
        expect(await store.has(absent)).toBe(false)
        await expect(store.get(absent)).rejects.toMatchObject({ name: 'ContentNotFoundError' })
        await expect(store.get('not-a-cid')).rejects.toMatchObject({ name: 'InvalidRecordError' })
      } finally { await factory.teardown(store) }
    })

    it('refuses content over maxBytes (PayloadTooLargeError)', async () => {
      const store = await factory.setup()
      try {
        const cid = await store.put(random(600_000, 5))
        await expect(store.get(cid, { maxBytes: 500_000 })).rejects.toMatchObject({ name: 'PayloadTooLargeError' })
        expect((await store.get(cid, { maxBytes: 600_000 })).length).toBe(600_000)
      } finally { await factory.teardown(store) }
    })

    it('honours an aborted signal', async () => {
      const store = await factory.setup()
      try {
        await expect(store.put(random(10, 1), { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' })
      } finally { await factory.teardown(store) }
    })

    if (factory.reopen !== undefined) {
      const reopen = factory.reopen
      it('keeps content and pins across close and reopen', async () => {
        let store = await factory.setup()
        const bytes = random(700_000, 11)
        const cid = await store.put(bytes)
        await store.pin(cid)
        store = await reopen(store)
        try {
          expect(await store.get(cid)).toEqual(bytes)
          expect(await store.isPinned(cid)).toBe(true)
        } finally { await factory.teardown(store) }
      })
    }
  })
}
