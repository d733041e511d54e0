import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { RunDirectoryError } from '../core/errors.ts'
import { HEAD_FILE } from './head.ts'
import { MANIFEST_FILE } from './manifest.ts'

/**
 * The file that says "a Conclave run made this directory". It is written before anything
 * else, so a run killed at any moment leaves a directory that `--force` may replace.
 */
export const RUN_MARKER = '.conclave-run'

const RunMarker = z.object({ conclave: z.literal('run'), version: z.literal(1) }).strict()
const MARKER: z.infer<typeof RunMarker> = { conclave: 'run', version: 1 }

/**
 * Everything a run writes at the top of its directory (besides the marker). `--force`
 * removes these and nothing else; a directory holding anything more is refused.
 */
export const RUN_ENTRIES: readonly string[] = ['ledger', 'store', 'keys', 'agents', 'config.json', 'report.json', 'report.md', 'learning-curve.svg', 'votes.svg', 'reputation.svg', MANIFEST_FILE, HEAD_FILE]

/**
 * Makes `dir` ready for a new run: creates it (or takes it empty) and marks it. A directory
 * that holds an earlier run is emptied of what that run wrote when `force` is given;
 * anything else in it is never touched: the run is refused and the error says what to do.
 */
export async function prepareRunDir (dir: string, options: { force?: boolean } = {}): Promise<void> {
  const entries = await entriesOf(dir)
  if (entries === undefined || entries.length === 0) {
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, RUN_MARKER), JSON.stringify(MARKER) + '\n')
    return
  }
  if (!entries.includes(RUN_MARKER)) {
    throw new RunDirectoryError(`${dir} is not empty and has no ${RUN_MARKER} marker, so nothing says a Conclave run made it (a run from before the marker has none either): choose another --out, or empty it yourself`)
  }
  await assertKnownMarker(dir)
  const written = entries.filter(e => e !== RUN_MARKER)
  const unknown = written.filter(e => !RUN_ENTRIES.includes(e))
  if (unknown.length > 0) {
    throw new RunDirectoryError(`${dir} holds an earlier run, and also ${unknown.map(e => `"${e}"`).join(', ')}, which no run made; move ${unknown.length === 1 ? 'it' : 'them'} away, then run again`)
  }
  if (written.length > 0 && options.force !== true) throw new RunDirectoryError(`${dir} holds an earlier run; pass --force to replace it, or choose another --out`)
  for (const entry of written) await rm(join(dir, entry), { recursive: true, force: true })
}

/** Refuses to resume a directory that holds no run: a run made it (its marker) and its config and ledger are there. */
export async function assertResumable (dir: string): Promise<void> {
  const entries = await entriesOf(dir) ?? []
  const missing = [RUN_MARKER, 'config.json', 'ledger'].filter(e => !entries.includes(e))
  if (missing.length > 0) throw new RunDirectoryError(`${dir} holds no run to resume: it has no ${missing.join(', ')}`)
  await assertKnownMarker(dir)
}

/** The names in `dir`, or undefined when there is no such directory. */
async function entriesOf (dir: string): Promise<string[] | undefined> {
  const info = await stat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw new RunDirectoryError(`cannot use ${dir} as a run directory: ${err.message}`, { cause: err })
  })
  if (info === undefined) return undefined
  if (!info.isDirectory()) throw new RunDirectoryError(`${dir} is a file, not a run directory: choose another --out`)
  return readdir(dir)
}

async function assertKnownMarker (dir: string): Promise<void> {
  const text = await readFile(join(dir, RUN_MARKER), 'utf8').catch(() => '')
  let marker: unknown
  try { marker = JSON.parse(text) } catch { marker = undefined }
  if (!RunMarker.safeParse(marker).success) {
    throw new RunDirectoryError(`${join(dir, RUN_MARKER)} is not a run marker this Conclave knows (format version ${MARKER.version}); a newer Conclave may have made ${dir}: use that, or choose another --out`)
  }
}
