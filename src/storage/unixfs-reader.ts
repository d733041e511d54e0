import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { mapConcurrently } from '../core/concurrently.ts'
import { ContentMismatchError, PayloadTooLargeError } from '../core/errors.ts'
import type { AbortOptions } from '../core/options.ts'

/**
 * Where a file DAG's blocks come from: each one whole and already checked against its CID.
 * Given `into`, a block of exactly that many bytes may be read into it and returned as it.
 */
export type ReadBlock = (cid: CID, options: AbortOptions, into?: Uint8Array) => Promise<Uint8Array>

export interface ReadFileOptions extends AbortOptions {
  maxBytes: number
  /** Leaf blocks read at once. @default 8 */
  concurrency?: number
}

/**
 * A UnixFS file, read into one buffer: each leaf is read from disk straight to its offset
 * and verified there (the generic exporter copies every block twice more on the way). The
 * root says the size, so a file over `maxBytes` is refused before any leaf is read; every
 * node's sizes must add up to what its parent says, so the DAG cannot place bytes twice
 * or leave a gap.
 */
export async function readUnixfsFile (root: CID, readBlock: ReadBlock, options: ReadFileOptions): Promise<Uint8Array> {
  const top = await readBlock(root, options)
  if (root.code === raw.code) {
    if (top.length > options.maxBytes) throw new PayloadTooLargeError(`content ${root} has ${top.length} bytes, over the ${options.maxBytes}-byte limit`)
    return top
  }
  const size = fileSize(root, top)
  if (size > options.maxBytes) throw new PayloadTooLargeError(`content ${root} has ${size} bytes, over the ${options.maxBytes}-byte limit`)
  const out = new Uint8Array(size)
  const leaves: Array<{ cid: CID, at: number, size: number }> = []
  const place = async (cid: CID, bytes: Uint8Array, at: number, expected: number): Promise<void> => {
    const { node, unixfs } = decodeFile(cid, bytes)
    const inline = unixfs.data ?? new Uint8Array(0)
    if (node.Links.length !== unixfs.blockSizes.length) throw new ContentMismatchError(`node ${cid} has ${node.Links.length} links but ${unixfs.blockSizes.length} block sizes`)
    const total = inline.length + unixfs.blockSizes.reduce((sum, s) => sum + Number(s), 0)
    if (total !== expected) throw new ContentMismatchError(`node ${cid} holds ${total} bytes where its parent says ${expected}`)
    out.set(inline, at)
    let offset = at + inline.length
    for (const [i, link] of node.Links.entries()) {
      const childSize = Number(unixfs.blockSizes[i])
      if (link.Hash.code === raw.code) leaves.push({ cid: link.Hash, at: offset, size: childSize })
      else await place(link.Hash, await readBlock(link.Hash, options), offset, childSize)
      offset += childSize
    }
  }
  await place(root, top, 0, size)
  await mapConcurrently(leaves, options.concurrency ?? 8, async leaf => {
    const into = out.subarray(leaf.at, leaf.at + leaf.size)
    const bytes = await readBlock(leaf.cid, options, into)
    if (bytes.length !== leaf.size) throw new ContentMismatchError(`leaf ${leaf.cid} has ${bytes.length} bytes where its parent says ${leaf.size}`)
    if (bytes !== into) into.set(bytes)
  })
  return out
}

/** The size a file DAG's root declares (ContentMismatchError when it is not a UnixFS file). */
function fileSize (cid: CID, bytes: Uint8Array): number {
  return Number(decodeFile(cid, bytes).unixfs.fileSize())
}

function decodeFile (cid: CID, bytes: Uint8Array): { node: dagPb.PBNode, unixfs: UnixFS } {
  if (cid.code !== dagPb.code) throw new ContentMismatchError(`block ${cid} is neither raw nor dag-pb`)
  let node: dagPb.PBNode
  let unixfs: UnixFS
  try {
    node = dagPb.decode(bytes)
    if (node.Data === undefined) throw new Error('no UnixFS data')
    unixfs = UnixFS.unmarshal(node.Data)
  } catch (err) {
    throw new ContentMismatchError(`block ${cid} does not decode as a UnixFS node: a block is damaged`, { cause: err })
  }
  if (unixfs.type !== 'file' && unixfs.type !== 'raw') throw new ContentMismatchError(`block ${cid} is a UnixFS ${unixfs.type}, not a file`)
  return { node, unixfs }
}
