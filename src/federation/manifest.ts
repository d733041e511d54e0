import { readdir, readFile } from 'node:fs/promises'
import { join, sep } from 'node:path'
import { z } from 'zod'
import { AlteredFileError, type ConclaveError, InvalidRecordError, MissingFileError, StrayFileError } from '../core/errors.ts'
import { mapConcurrently } from '../core/concurrently.ts'
import { readPlainFile } from '../core/files.ts'
import { Sha256Hex } from '../core/records.ts'
import { sha256Hex } from './content.ts'

/** The folders of a run directory whose every byte the manifest accounts for. */
export const SEALED_FOLDERS = ['ledger', 'store'] as const
export const MANIFEST_FILE = 'manifest.json'

/** Files read at once while taking a manifest: a store holds thousands of small ones. */
const READS_IN_FLIGHT = 32

const RelPath = z.string().min(1).max(1024)

/**
 * `DIR/manifest.json`: everything a run left under `ledger/` and `store/` when it ended,
 * `/`-separated paths relative to DIR, sorted. With the ledger's head it is what makes a
 * run directory complete: a file that is missing, extra or changed since does not audit.
 */
export const RunManifest = z.object({
  manifest: z.literal(1),
  dirs: z.array(RelPath),
  files: z.array(z.object({ path: RelPath, size: z.number().int().nonnegative(), sha256: Sha256Hex }).strict())
}).strict()
export type RunManifest = z.infer<typeof RunManifest>

/** What is under the sealed folders now; `others` are entries that are neither a file nor a folder (links, sockets…). */
export async function takeManifest (dir: string): Promise<RunManifest & { others: string[] }> {
  const found: RunManifest & { others: string[] } = { manifest: 1, dirs: [], files: [], others: [] }
  for (const folder of SEALED_FOLDERS) {
    const entries = await readdir(join(dir, folder), { withFileTypes: true, recursive: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return []
      throw err
    })
    const files: Array<{ path: string, at: string }> = []
    for (const e of entries) {
      const path = [folder, ...e.parentPath.slice(join(dir, folder).length).split(sep).filter(Boolean), e.name].join('/')
      if (e.isDirectory()) found.dirs.push(path)
      else if (e.isFile()) files.push({ path, at: join(e.parentPath, e.name) })
      else found.others.push(path)
    }
    found.files.push(...await mapConcurrently(files, READS_IN_FLIGHT, async ({ path, at }) => {
      const bytes = await readFile(at)
      return { path, size: bytes.length, sha256: sha256Hex(bytes) }
    }))
  }
  found.dirs.sort()
  found.files.sort((a, b) => a.path < b.path ? -1 : 1)
  return found
}

/** The manifest's bytes: one canonical form, so any byte changed in it is a change. */
export function manifestText (manifest: RunManifest): string {
  const { dirs, files } = manifest
  return JSON.stringify({ manifest: 1, dirs, files: files.map(f => ({ path: f.path, size: f.size, sha256: f.sha256 })) }, null, 2) + '\n'
}

/** Reads `DIR/manifest.json`: its bytes, or MissingFileError; PayloadTooLargeError when it is longer than a list of what is there could be. */
export async function readManifestBytes (dir: string): Promise<Buffer> {
  return readSealedFile(dir, MANIFEST_FILE, Math.max(MANIFEST_BYTES_KEPT, await listingBytes(dir)), 'its record of what it made')
}

/** What any manifest may take, however little is there now (files may be missing: that is named by path, later). */
const MANIFEST_BYTES_KEPT = 64 * 1024 * 1024

/**
 * More than the manifest of what is under the sealed folders now takes: one entry each, its
 * path as JSON and its size and hash. A long run's store holds a file per chunk of every
 * update (16 members of a 64 MiB model: ~4,400 a round), so no fixed cap fits every honest run.
 */
async function listingBytes (dir: string): Promise<number> {
  const paths: string[] = []
  for (const folder of SEALED_FOLDERS) {
    const entries = await readdir(join(dir, folder), { recursive: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return []
      throw err
    })
    paths.push(...entries.map(entry => `${folder}/${entry}`))
  }
  return manifestBound(paths)
}

/** The most bytes manifestText takes for entries (files or folders) at `paths`. */
export function manifestBound (paths: readonly string[]): number {
  // Beside each path as JSON: a file's indentation, keys, size (at most 16 digits) and hash come to under 130 bytes.
  return paths.reduce((bytes, path) => bytes + Buffer.byteLength(JSON.stringify(path)) + 200, 1024)
}

/**
 * A sealed file's bytes, read only as a plain file of at most `maxBytes`: a run directory
 * may come from anyone, and a huge or special file there must not fill the audit's memory
 * or hang it (found red-teaming).
 */
export async function readSealedFile (dir: string, name: string, maxBytes: number, what: string): Promise<Buffer> {
  const bytes = await readPlainFile(join(dir, name), maxBytes)
  if (bytes === undefined) throw new MissingFileError(`${name} is missing: the run did not end, or ${what} is gone`)
  return bytes
}

export function parseManifest (bytes: Buffer): RunManifest {
  return parseSealedFile(bytes, { name: MANIFEST_FILE, what: 'a run manifest', schema: RunManifest, text: manifestText })
}

/**
 * A file a run seals (manifest.json, head.json): it must parse under its schema and be
 * byte for byte the canonical text of what it holds, so no two files can mean the same.
 */
export function parseSealedFile<T> (bytes: Buffer, file: { name: string, what: string, schema: z.ZodType<T>, text: (value: T) => string }): T {
  let parsed: T
  try {
    parsed = file.schema.parse(JSON.parse(bytes.toString('utf8')))
  } catch (err) {
    throw new InvalidRecordError(`${file.name} is not ${file.what}`, { cause: err })
  }
  if (file.text(parsed) !== bytes.toString('utf8')) throw new InvalidRecordError(`${file.name} is not in its canonical form`)
  return parsed
}

/** The first difference between what the manifest lists and what is there, by path; undefined when none. */
export function compareManifest (expected: RunManifest, found: RunManifest & { others: string[] }): ConclaveError | undefined {
  const want = new Map<string, string>([...expected.dirs.map(d => [d, 'dir'] as const), ...expected.files.map(f => [f.path, `${f.size} ${f.sha256}`] as const)])
  const have = new Map<string, string>([...found.dirs.map(d => [d, 'dir'] as const), ...found.files.map(f => [f.path, `${f.size} ${f.sha256}`] as const), ...found.others.map(o => [o, 'other'] as const)])
  for (const path of [...new Set([...want.keys(), ...have.keys()])].sort()) {
    const [w, h] = [want.get(path), have.get(path)]
    if (w === h) continue
    if (h === undefined) return new MissingFileError(`${path} is missing: the run's manifest lists it`)
    if (w === undefined) return new StrayFileError(`${path} is not part of the run: its manifest does not list it`)
    return new AlteredFileError(`${path} differs from what the run's manifest says (${w === 'dir' ? 'a folder' : w}, found ${h === 'dir' ? 'a folder' : h})`)
  }
  return undefined
}
