import { Key } from 'interface-datastore'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { PinDatastore } from '../../src/storage/pin-datastore.ts'

const record = (n: number): Key => new Key(`/pinned-block/B${n}`)
const bytes = new Uint8Array([1, 2, 3])

describe('the pin datastore', () => {
  it('answers for a block record it holds, including those written before it was opened, and misses the others without the disk', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'conclave-pins-')), 'datastore')
    const first = new PinDatastore(dir)
    await first.open()
    await first.put(record(1), bytes)
    await first.put(new Key('/pins/P1'), bytes) // waits for the block record before it
    await first.close()

    const reopened = new PinDatastore(dir)
    await reopened.open()
    expect(await reopened.has(record(1))).toBe(true)
    expect(new Uint8Array(await reopened.get(record(1)))).toEqual(bytes)
    expect(await reopened.has(record(2))).toBe(false)
    await expect(reopened.get(record(2))).rejects.toMatchObject({ name: 'NotFoundError' })
    await reopened.put(record(2), bytes)
    expect(new Uint8Array(await reopened.get(record(2)))).toEqual(bytes)
    await reopened.delete(record(1))
    expect(await reopened.has(record(1))).toBe(false)
    await expect(reopened.get(record(1))).rejects.toMatchObject({ name: 'NotFoundError' })
    await reopened.close()
  })
})
