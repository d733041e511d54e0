import { join } from 'node:path'
import { peekRecord } from '../src/identity/index.ts'
import { readLedgerDir } from '../src/federation/run-view.ts'
import { createHeliaStore } from '../src/storage/helia.ts'

/** Mean bytes of the updates a run's proposals point to, as stored (what each member sent per round). */
export async function meanUpdateBytes (runDir: string): Promise<number> {
  const { blocks } = await readLedgerDir(join(runDir, 'ledger'))
  const store = await createHeliaStore({ dir: join(runDir, 'store'), readOnly: true })
  try {
    const sizes: number[] = []
    for (const block of blocks) {
      const { record } = peekRecord(block.record)
      if (record?.type === 'proposal') sizes.push((await store.get(record.delta.cid)).length)
    }
    return sizes.reduce((a, b) => a + b, 0) / Math.max(1, sizes.length)
  } finally {
    await store.close()
  }
}
