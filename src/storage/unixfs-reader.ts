import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { mapConcurrently } from '../core/concurrently.ts'
import { ContentMismatchError, PayloadTooLargeError } from '../core/errors.ts'
import type { AbortOptions } from '../core/options.ts'
import { CHUNK_BYTES, MAX_LINKS } from './unixfs-settings.ts'

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
 *
 * Only the layout the importer writes is read (unixfs-settings.ts): no link of 0 bytes, at
 * most MAX_LINKS links a node, no raw leaf over a chunk, and no more blocks than a balanced
 * tree of the file's size has. A leaf linked many times is read as often as it is placed,
 * so without these a few small nodes linking one shared leaf over and over cost
 * links^depth reads before the content's hash is ever checked.
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
  // Counted as each link is followed, before its block is read: the root is read already.
  const most = layoutBlocks(size)
  let blocks = 1
  const follow = (cid: CID): void => {
    if (++blocks > most) throw new ContentMismatchError(`content ${root} links more than the ${most} blocks a file of ${size} bytes is stored in (at ${cid})`)
  }
  const place = async (cid: CID, bytes: Uint8Array, at: number, expected: number): Promise<void> => {
    const { node, unixfs } = decodeFile(cid, bytes)
    const inline = unixfs.data ?? new Uint8Array(0)
    if (node.Links.length !== unixfs.blockSizes.length) throw new ContentMismatchError(`node ${cid} has ${node.Links.length} links but ${unixfs.blockSizes.length} block sizes`)
    if (node.Links.length > MAX_LINKS) throw new ContentMismatchError(`node ${cid} has ${node.Links.length} links, more than the ${MAX_LINKS} a node holds`)
    const total = inline.length + unixfs.blockSizes.reduce((sum, s) => sum + Number(s), 0)
    if (total !== expected) throw new ContentMismatchError(`node ${cid} holds ${total} bytes where its parent says ${expected}`)
    out.set(inline, at)
    let offset = at + inline.length
    for (const [i, link] of node.Links.entries()) {
      const childSize = Number(unixfs.blockSizes[i])
      if (childSize === 0) throw new ContentMismatchError(`node ${cid} links ${link.Hash} for 0 bytes`)
      follow(link.Hash)
      if (link.Hash.code === raw.code) {
        if (childSize > CHUNK_BYTES) throw new ContentMismatchError(`node ${cid} links a raw leaf of ${childSize} bytes, more than a ${CHUNK_BYTES}-byte chunk`)
        leaves.push({ cid: link.Hash, at: offset, size: childSize })
      } else {
        await place(link.Hash, await readBlock(link.Hash, options), offset, childSize)
      }
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

/**
 * Blocks in the importer's balanced tree for a file of `size` bytes under a dag-pb root:
 * its chunks, then each level of nodes over them up to the root. At least two (a root over
 * one leaf) and at most ceil(size/CHUNK)·(1 + 1/(MAX_LINKS − 1)) + depth + 1.
 */
export function layoutBlocks (size: number): number {
  const chunks = Math.max(1, Math.ceil(size / CHUNK_BYTES))
  let blocks = chunks
  for (let level = chunks; level > 1;) {
    level = Math.ceil(level / MAX_LINKS)
    blocks += level
  }
  return Math.max(blocks, 2)
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
