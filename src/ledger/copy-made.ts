import { join } from 'node:path'
import { z } from 'zod'
import { LedgerCorruptError } from '../core/errors.ts'
import { readOwnFile, writeAtomic } from '../core/files.ts'
import { parseJson } from './dag.ts'

/**
 * Beside a replica copy that had no charter when first opened: when it was made, by its clock.
 * Every copy of a run is made before the founder charters it (the founder waits for every
 * member's hello, sent once the copy is open), so a charter from well before then is an earlier
 * run's, replayed.
 */
export const COPY_MADE_FILE = 'replica-made.json'

/** Most bytes the note may take: it is ~20. */
const MAX_COPY_MADE_BYTES = 64 * 1024

const CopyMade = z.strictObject({ madeAt: z.number().int().nonnegative() })

/** When the copy in `dir` was noted as made (unix seconds), or undefined when it was not; LedgerCorruptError when the note is damaged. */
export async function readCopyMade (dir: string): Promise<number | undefined> {
  const path = join(dir, COPY_MADE_FILE)
  // Only a plain file, as noteCopyMade writes (~20 bytes): a link or a FIFO there is neither read nor waited on.
  const bytes = await readOwnFile(path, { is: 'the note this copy wrote of when it was made', error: LedgerCorruptError, maxBytes: MAX_COPY_MADE_BYTES })
  if (bytes === undefined) return undefined
  const parsed = CopyMade.safeParse(parseJson(bytes.toString('utf8')))
  if (!parsed.success) throw new LedgerCorruptError(`${path} is damaged: it should say when this copy was made, as {"madeAt": unix seconds}`)
  return parsed.data.madeAt
}

/** Notes the copy in `dir` as made at `madeAt`, on the disk before this resolves, so a copy restarted before its charter came judges by the first time. */
export async function noteCopyMade (dir: string, madeAt: number): Promise<number> {
  await writeAtomic(join(dir, COPY_MADE_FILE), JSON.stringify({ madeAt }) + '\n', { sync: true })
  return madeAt
}
