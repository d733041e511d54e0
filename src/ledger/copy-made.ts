import { join } from 'node:path'
import { z } from 'zod'
import { LedgerCorruptError } from '../core/errors.ts'
import { readIfExists, writeAtomic } from '../core/files.ts'
import { parseJson } from './dag.ts'

/** Beside a replica copy that had no charter when first opened: when it was made, by its clock. */
export const COPY_MADE_FILE = 'replica-made.json'

const CopyMade = z.strictObject({ madeAt: z.number().int().nonnegative() })

/**
 * When the copy in `dir` was made (unix seconds), noted on the disk the first time it is asked
 * for, so a copy restarted before its charter came still judges by the first time. Every copy of
 * a run is made before the founder charters it (the founder waits for every member's hello), so
 * a charter from before then is an earlier run's, replayed.
 */
export async function copyMadeAt (dir: string, clock: () => number): Promise<number> {
  const path = join(dir, COPY_MADE_FILE)
  const bytes = await readIfExists(path)
  if (bytes === undefined) {
    const madeAt = clock()
    await writeAtomic(path, JSON.stringify({ madeAt }) + '\n', { sync: true })
    return madeAt
  }
  const parsed = CopyMade.safeParse(parseJson(bytes.toString('utf8')))
  if (!parsed.success) throw new LedgerCorruptError(`${path} is damaged: it should say when this copy was made, as {"madeAt": unix seconds}`)
  return parsed.data.madeAt
}
