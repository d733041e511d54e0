import { importBytes } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import { InvalidRecordError } from '../core/errors.ts'

/** Chunk size and DAG width of `ipfs add --cid-version 1` (kubo's defaults), so Helia and kubo agree on CIDs. */
export const CHUNK_BYTES = 262_144
export const MAX_LINKS = 174
/** The largest block the importer writes: a raw chunk (a node of MAX_LINKS links is some 12 KB). A block file any larger is refused by its size, unread. */
export const MAX_BLOCK_BYTES = CHUNK_BYTES

export const importerOptions = {
  cidVersion: 1 as const,
  rawLeaves: true,
  reduceSingleLeafToSelf: true,
  chunker: fixedSize({ chunkSize: CHUNK_BYTES }),
  layout: balanced({ maxChildrenPerNode: MAX_LINKS })
}

/** The CID a store would give `bytes` (Helia's and kubo's alike), computed without storing anything. */
export async function contentCid (bytes: Uint8Array): Promise<string> {
  const { cid } = await importBytes(bytes, { put: async cid => cid }, importerOptions)
  return cid.toString()
}

/** @default 64 MiB */
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024

export function parseCid (text: string): CID {
  try {
    return CID.parse(text)
  } catch (err) {
    throw new InvalidRecordError(`"${text.slice(0, 80)}" is not a CID`, { cause: err })
  }
}
