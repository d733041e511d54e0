import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative, sep } from 'node:path'
import { createHeliaStore } from '../../src/storage/helia.ts'
import type { ContentStore } from '../../src/storage/index.ts'

/** Opens a Helia store in `dir`, or in a fresh temporary directory. */
export async function openHelia (dir?: string): Promise<{ store: ContentStore, dir: string }> {
  const where = dir ?? await mkdtemp(join(tmpdir(), 'conclave-helia-'))
  return { store: await createHeliaStore({ dir: where }), dir: where }
}

export interface StoreFile {
  file: string
  /** Path under the store dir, `/`-separated, as the audit reports it. */
  rel: string
  bytes: Buffer
  /** CIDv1 raw of the bytes' sha2-256, computed here (not read from the file name). */
  cid: string
}

/** Every file under `dir/part`. */
export async function storeFiles (dir: string, part: 'blocks' | 'datastore'): Promise<StoreFile[]> {
  const entries = await readdir(join(dir, part), { withFileTypes: true, recursive: true })
  return Promise.all(entries.filter(e => e.isFile()).map(async (e) => {
    const file = join(e.parentPath, e.name)
    const bytes = await readFile(file)
    return { file, rel: relative(dir, file).split(sep).join('/'), bytes, cid: CID.createV1(raw.code, await sha256.digest(bytes)).toString() }
  }))
}

/** A copy of `bytes` with the lowest bit of byte `at` flipped. */
export function flip (bytes: Buffer, at: number): Buffer {
  const out = Buffer.from(bytes)
  out[at] = (out[at] as number) ^ 0x01
  return out
}
