import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import { z } from 'zod'

/**
 * A Merkle tree over records in the shape of RFC 6962 (Certificate Transparency): leaves
 * hash as sha256(0x00 ‖ record), inner nodes as sha256(0x01 ‖ left ‖ right), and a list
 * of n leaves splits at the largest power of two below n. The domain prefixes stop a leaf
 * from posing as a node, and the split (instead of duplicating an odd last leaf) keeps two
 * different lists from sharing a root.
 */
export function leafHash (record: Uint8Array): Uint8Array {
  return sha256(concat(Uint8Array.of(0), record))
}

function nodeHash (left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(concat(Uint8Array.of(1), left, right))
}

function split (n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

export function merkleRoot (records: readonly Uint8Array[]): Uint8Array {
  if (records.length === 0) return sha256(new Uint8Array())
  return subtreeRoot(records.map(leafHash))
}

function subtreeRoot (leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 1) return leaves[0] as Uint8Array
  const k = split(leaves.length)
  return nodeHash(subtreeRoot(leaves.slice(0, k)), subtreeRoot(leaves.slice(k)))
}

/** The audit path of leaf `index`, from the leaf up (RFC 6962 §2.1.1). */
export function merkleProof (records: readonly Uint8Array[], index: number): Uint8Array[] {
  if (!Number.isInteger(index) || index < 0 || index >= records.length) throw new RangeError(`no leaf ${index} among ${records.length}`)
  return path(records.map(leafHash), index)
}

function path (leaves: readonly Uint8Array[], index: number): Uint8Array[] {
  if (leaves.length <= 1) return []
  const k = split(leaves.length)
  return index < k
    ? [...path(leaves.slice(0, k), index), subtreeRoot(leaves.slice(k))]
    : [...path(leaves.slice(k), index - k), subtreeRoot(leaves.slice(0, k))]
}

/** Whether `record` is leaf `index` of `size` leaves under `root`, by its audit path (RFC 9162 §2.1.3.2). */
export function verifyInclusion (record: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return false
  let fn = index
  let sn = size - 1
  let r = leafHash(record)
  for (const p of proof) {
    if (sn === 0) return false
    if ((fn & 1) === 1 || fn === sn) {
      r = nodeHash(p, r)
      if ((fn & 1) === 0) while ((fn & 1) === 0 && fn !== 0) { fn >>= 1; sn >>= 1 }
    } else {
      r = nodeHash(r, p)
    }
    fn >>= 1
    sn >>= 1
  }
  return sn === 0 && equal(r, root)
}

const Hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 32 bytes of hex')

/** What a record keeps to prove it was anchored in a batch: the batch's root, its place, and the path. */
export const InclusionReceipt = z.object({
  /** The transaction (or block) that anchored the root. */
  anchor: z.string().min(1).max(128),
  root: Hex32,
  index: z.number().int().nonnegative(),
  size: z.number().int().positive().max(1 << 20),
  proof: z.array(Hex32).max(32)
}).strict()
export type InclusionReceipt = z.infer<typeof InclusionReceipt>

/** A batch of records under one root, with a receipt for each. */
export function batchReceipts (records: readonly Uint8Array[], anchor: string): { root: Uint8Array, receipts: InclusionReceipt[] } {
  const root = merkleRoot(records)
  return {
    root,
    receipts: records.map((_, index) => ({ anchor, root: bytesToHex(root), index, size: records.length, proof: merkleProof(records, index).map(bytesToHex) }))
  }
}

/**
 * Checks a receipt against what the ledger shows for its anchor: the root and the count.
 * The count matters: a root alone does not fix the tree's size (as in Certificate
 * Transparency, where the size is signed with the root).
 */
export function verifyReceipt (record: Uint8Array, receipt: InclusionReceipt, anchored: { root: Uint8Array, count: number }): boolean {
  const parsed = InclusionReceipt.safeParse(receipt)
  if (!parsed.success) return false
  const r = parsed.data
  return r.size === anchored.count && equal(hexToBytes(r.root), anchored.root) && verifyInclusion(record, r.index, r.size, r.proof.map(hexToBytes), anchored.root)
}

function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

function equal (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
