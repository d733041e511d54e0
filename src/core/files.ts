import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'

/** A file's bytes, or undefined when it does not exist (any other error is thrown). */
export async function readIfExists (path: string): Promise<Buffer | undefined> {
  return readFile(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw err
  })
}

/**
 * Replaces a small state file so that a crash leaves the old version or the new one, never
 * half of one: write beside it, then rename over it.
 */
export async function writeAtomic (path: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  const tmp = `${path}.tmp`
  await writeFile(tmp, data, { mode: options.mode })
  await rename(tmp, path)
}
