import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import type { ContentStore } from '../../src/storage/index.ts'

export interface ContentStoreFactory {
  setup: () => Promise<ContentStore>
  teardown: (store: ContentStore) => Promise<void>
  /** Closes the store and opens the same one again; given for stores that persist. */
  reopen?: (store: ContentStore) => Promise<ContentStore>
}

/** Deterministic pseudo-random bytes (an LCG), so a failure names the same bytes every run. */
export function pseudoRandom (n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed >>> 0
  for (let i = 0; i < n; i++) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; out[i] = x >>> 24 }
  return out
}

/** Sizes across the chunking boundaries: empty, one byte, exactly one 256 KiB chunk, 1 MiB + 1 (five chunks). */
export const SIZES = [0, 1, 262_144, 1_048_577]

/** The CID a single-block object must get, computed with multiformats only: CIDv1, raw codec, sha2-256 of the bytes. */
async function rawCid (bytes: Uint8Array): Promise<string> {
  return CID.createV1(raw.code, await sha256.digest(bytes)).toString()
}

/**
 * The behaviour every ContentStore shares. Helia runs it in test/storage/helia.test.ts;
 * kubo runs it against a real daemon in test/integration/kubo.int.test.ts:
 *
 *   const url = `http://127.0.0.1:${process.env.KUBO_API_PORT ?? '5001'}`
 *   contentStoreTests('kubo (real daemon)', {
 *     setup: () => createContentStore({ kind: 'kubo', url }, { dir: '/unused' }),
 *     teardown: s => s.close()
 *   })
 *
 * A string that is not a CID is refused with InvalidRecordError by every method, before
 * any I/O: it is a malformed argument, not a lookup that failed (ContentNotFoundError is
 * for well-formed CIDs the store does not hold).
 */
export function contentStoreTests (name: string, factory: ContentStoreFactory): void {
  const withStore = (test: (store: ContentStore) => Promise<void>) => async () => {
    const store = await factory.setup()
    try { await test(store) } finally { await factory.teardown(store) }
  }

  describe(`ContentStore conformance: ${name}`, () => {
    it.each(SIZES)('round-trips %i bytes; the same bytes give the same CID', async (size) => withStore(async (store) => {
      const bytes = pseudoRandom(size, size + 1)
      const cid = await store.put(bytes)
      expect(cid).toMatch(/^b[a-z2-7]+$/)
      expect(await store.get(cid)).toEqual(bytes)
      expect(await store.put(bytes.slice())).toBe(cid)
      expect(await store.has(cid)).toBe(true)
    })())

    it('gives the CID of `ipfs add --cid-version 1`', withStore(async (store) => {
      expect(await store.put(new TextEncoder().encode('hello federation'))).toBe('bafkreigyghlpe6l7tbxlkrj6upeg4g3ky7vmss5dl3oro4ylsoktmbm27i')
    }))

    it.each([1, 1000, 262_144])('gives a single-block object (%i bytes) the CID multiformats computes: CIDv1 raw sha2-256', async (size) => withStore(async (store) => {
      const bytes = pseudoRandom(size, 9)
      expect(await store.put(bytes)).toBe(await rawCid(bytes))
    })())

    it('gives a multi-block object a dag-pb root, not a raw CID', withStore(async (store) => {
      const bytes = pseudoRandom(262_145, 3)
      const cid = CID.parse(await store.put(bytes))
      expect({ version: cid.version, code: cid.code }).toEqual({ version: 1, code: 0x70 })
    }))

    it('pins content', withStore(async (store) => {
      // Fresh random bytes: a persistent store (a long-lived kubo repo) has never seen them.
      const cid = await store.put(randomBytes(300_000))
      expect(await store.isPinned(cid)).toBe(false)
      await store.pin(cid)
      expect(await store.isPinned(cid)).toBe(true)
      await store.pin(cid) // pinning twice is not an error
      expect(await store.isPinned(cid)).toBe(true)
    }))

    it('answers for a CID it does not hold: has → false, get and pin → ContentNotFoundError, quickly', withStore(async (store) => {
      const absent = await rawCid(randomBytes(32))
      const started = Date.now()
      expect(await store.has(absent)).toBe(false)
      expect(await store.isPinned(absent)).toBe(false)
      await expect(store.get(absent)).rejects.toMatchObject({ name: 'ContentNotFoundError', code: 'ERR_CONTENT_NOT_FOUND' })
      await expect(store.pin(absent)).rejects.toMatchObject({ name: 'ContentNotFoundError' })
      expect(Date.now() - started).toBeLessThan(10_000)
    }), 20_000)

    it('refuses a string that is not a CID in every method (InvalidRecordError)', withStore(async (store) => {
      for (const text of ['not-a-cid', '', 'bafkreigyghlpe6l7tbxlkrj6upeg4g3ky7vmss5dl3oro4ylsoktmbm27']) {
        const calls = [store.get(text), store.has(text), store.pin(text), store.isPinned(text)]
        const results = await Promise.allSettled(calls)
        expect(results.map(r => r.status === 'rejected' ? (r.reason as Error).name : 'fulfilled')).toEqual(Array(4).fill('InvalidRecordError'))
      }
    }))

    it('refuses content over maxBytes (PayloadTooLargeError)', withStore(async (store) => {
      const big = await store.put(pseudoRandom(600_000, 5))
      await expect(store.get(big, { maxBytes: 599_999 })).rejects.toMatchObject({ name: 'PayloadTooLargeError', code: 'ERR_PAYLOAD_TOO_LARGE' })
      expect((await store.get(big, { maxBytes: 600_000 })).length).toBe(600_000)
      const small = await store.put(pseudoRandom(100, 6))
      await expect(store.get(small, { maxBytes: 99 })).rejects.toMatchObject({ name: 'PayloadTooLargeError' })
    }))

    it('honours an aborted signal in every method (AbortError)', withStore(async (store) => {
      const cid = await store.put(pseudoRandom(10, 1))
      const signal = AbortSignal.abort()
      const calls = [store.put(pseudoRandom(10, 2), { signal }), store.get(cid, { signal }), store.has(cid, { signal }), store.pin(cid, { signal }), store.isPinned(cid, { signal })]
      const results = await Promise.allSettled(calls)
      expect(results.map(r => r.status === 'rejected' ? (r.reason as Error).name : 'fulfilled')).toEqual(Array(5).fill('AbortError'))
    }))

    if (factory.reopen !== undefined) {
      const reopen = factory.reopen
      it('keeps content and pins across close and reopen', async () => {
        let store = await factory.setup()
        const bytes = pseudoRandom(700_000, 11)
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
