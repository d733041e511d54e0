import { describe, expect, it } from 'vitest'
import { createContentStore } from '../../src/storage/index.ts'

// The kubo store runs the full conformance suite against a real daemon in
// test/integration/kubo.int.test.ts; these are the checks that need no daemon.
describe('kubo store without a daemon', () => {
  it('reports an unreachable daemon as BackendUnavailableError, quickly', async () => {
    const store = await createContentStore({ kind: 'kubo', url: 'http://127.0.0.1:9' }, { dir: '/unused' })
    const started = Date.now()
    await expect(store.put(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({ name: 'BackendUnavailableError' })
    await expect(store.get('bafkreigyghlpe6l7tbxlkrj6upeg4g3ky7vmss5dl3oro4ylsoktmbm27i')).rejects.toMatchObject({ name: 'BackendUnavailableError' })
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('refuses a non-CID before any network call (InvalidRecordError)', async () => {
    const store = await createContentStore({ kind: 'kubo', url: 'http://127.0.0.1:9' }, { dir: '/unused' })
    await expect(store.get('hello')).rejects.toMatchObject({ name: 'InvalidRecordError' })
    await expect(store.pin('hello')).rejects.toMatchObject({ name: 'InvalidRecordError' })
  })
})
