import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { ContentStore } from '../../src/storage/index.ts'
import { createHeliaStore, verifyAllBlocks } from '../../src/storage/helia.ts'
import { contentStoreTests } from '../conformance/content-store.ts'

const dirs = new WeakMap<object, string>()
async function open (dir?: string): Promise<ContentStore> {
  const where = dir ?? await mkdtemp(join(tmpdir(), 'conclave-helia-'))
  const store = await createHeliaStore({ dir: where })
  dirs.set(store, where)
  return store
}

contentStoreTests('helia', {
  setup: () => open(),
  teardown: s => s.close(),
  reopen: async (s) => { const dir = dirs.get(s) as string; await s.close(); return open(dir) }
})

async function blockFiles (dir: string): Promise<string[]> {
  const entries = await readdir(join(dir, 'blocks'), { withFileTypes: true, recursive: true })
  return entries.filter(e => e.isFile()).map(e => join(e.parentPath, e.name))
}

describe('helia store on disk', () => {
  it('refuses content when any byte of any of its block files flips (ContentMismatchError), and verifyAllBlocks names the block', async () => {
    const store = await open()
    const dir = dirs.get(store) as string
    const big = Uint8Array.from({ length: 700_000 }, (_, i) => (i * 31) % 251)
    const small = new TextEncoder().encode('a single raw block')
    const cids = [await store.put(big), await store.put(small)]
    const files = await blockFiles(dir)
    expect(files.length).toBe(5) // 3 raw leaves + 1 dag-pb root for `big`, 1 raw block for `small`
    expect(await verifyAllBlocks(dir)).toEqual([])
    for (const file of files) {
      const bytes = await readFile(file)
      for (const at of [0, Math.floor(bytes.length / 2), bytes.length - 1]) {
        const flipped = Buffer.from(bytes)
        flipped[at] = (flipped[at] as number) ^ 0x04
        await writeFile(file, flipped)
        const results = await Promise.allSettled(cids.map(c => store.get(c)))
        const failures = results.filter(r => r.status === 'rejected').map(r => (r as PromiseRejectedResult).reason.name)
        expect(failures, `flip at ${at} of ${file}`).toEqual(['ContentMismatchError'])
        expect(await verifyAllBlocks(dir)).toHaveLength(1)
      }
      await writeFile(file, bytes)
    }
    expect(await verifyAllBlocks(dir)).toEqual([])
    await store.close()
  })
})
