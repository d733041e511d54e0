import { createHash } from 'node:crypto'
import { bcs } from '@iota/iota-sdk/bcs'
import { Transaction } from '@iota/iota-sdk/transactions'
import { describe, expect, it } from 'vitest'
import { createIdentity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { buildBatchAnchorTransaction, iotaKeypair, signAnchorTransaction } from '../../src/ledger/iota.ts'
import { batchReceipts, merkleProof, merkleRoot, verifyInclusion, verifyReceipt } from '../../src/ledger/merkle.ts'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const h = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(createHash('sha256').update(Buffer.concat(parts)).digest())
const records = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => enc(`record ${i}`))

describe('Merkle batches (RFC 6962 shape)', () => {
  it('computes the root the RFC defines, checked by hand for 1, 2 and 3 leaves', () => {
    const [a, b, c] = records(3) as [Uint8Array, Uint8Array, Uint8Array]
    const leaf = (x: Uint8Array): Uint8Array => h(Uint8Array.of(0), x)
    const node = (l: Uint8Array, r: Uint8Array): Uint8Array => h(Uint8Array.of(1), l, r)
    expect(merkleRoot([a])).toEqual(leaf(a))
    expect(merkleRoot([a, b])).toEqual(node(leaf(a), leaf(b)))
    expect(merkleRoot([a, b, c])).toEqual(node(node(leaf(a), leaf(b)), leaf(c))) // split at 2, the last leaf is not duplicated
    expect(merkleRoot([a, b, c])).not.toEqual(merkleRoot([a, b, c, c]))
  })

  it('proves every leaf of every size up to 33, and no proof verifies for another record or index', () => {
    for (let n = 1; n <= 33; n++) {
      const rs = records(n)
      const root = merkleRoot(rs)
      for (let i = 0; i < n; i++) {
        const proof = merkleProof(rs, i)
        expect(proof.length).toBeLessThanOrEqual(Math.ceil(Math.log2(n)))
        expect(verifyInclusion(rs[i] as Uint8Array, i, n, proof, root)).toBe(true)
        expect(verifyInclusion(enc('forged'), i, n, proof, root)).toBe(false)
        if (n > 1) expect(verifyInclusion(rs[i] as Uint8Array, (i + 1) % n, n, proof, root)).toBe(false)
      }
    }
    expect(() => merkleProof(records(3), 3)).toThrow(RangeError)
  })

  it('gives each record a receipt that checks against the anchored root only', () => {
    const rs = records(5)
    const { root, receipts } = batchReceipts(rs, 'digest-1')
    receipts.forEach((r, i) => { expect(verifyReceipt(rs[i] as Uint8Array, r, { root, count: 5 })).toBe(true) })
    expect(verifyReceipt(rs[0] as Uint8Array, receipts[0]!, { root: merkleRoot(records(4)), count: 5 })).toBe(false)
    expect(verifyReceipt(rs[0] as Uint8Array, { ...receipts[0]!, size: 6 }, { root, count: 5 })).toBe(false) // the anchored count binds the size
    expect(verifyReceipt(rs[0] as Uint8Array, { ...receipts[0]!, proof: ['zz'] }, { root, count: 5 })).toBe(false) // malformed receipt: refused, not thrown
  })

  it('builds and signs one IOTA transaction that anchors a round\'s root, count and batch CID via anchor::anchor_root', async () => {
    const keypair = iotaKeypair(createIdentity(randomSecretKey()))
    const root = merkleRoot(records(7))
    const gas = [{ objectId: '0x' + '11'.repeat(32), version: '7', digest: '4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi' }]
    const input = { sender: keypair.toIotaAddress(), packageId: '0x' + 'ab'.repeat(32), root, count: 7, batch: 'bafkreigyghlpe6l7tbxlkrj6upeg4g3ky7vmss5dl3oro4ylsoktmbm27i', gasBudget: 10_000_000, gasPrice: 1000, gasPayment: gas }
    const bytes = await buildBatchAnchorTransaction(input)
    const data = Transaction.from(bytes).getData()
    expect(data.commands[0]?.MoveCall).toMatchObject({ module: 'anchor', function: 'anchor_root', arguments: [{ Input: 0 }, { Input: 1 }, { Input: 2 }] })
    const arg = (i: number): Uint8Array => Buffer.from(data.inputs[i]?.Pure?.bytes as string, 'base64')
    expect(bcs.byteVector().parse(arg(0))).toEqual(root)
    expect(bcs.u64().parse(arg(1))).toBe('7')
    expect(bcs.string().parse(arg(2))).toBe(input.batch)
    const { signature } = await signAnchorTransaction(keypair, bytes)
    expect(await keypair.getPublicKey().verifyTransaction(bytes, signature)).toBe(true)
    await expect(buildBatchAnchorTransaction({ ...input, root: root.slice(1) })).rejects.toMatchObject({ name: 'ConfigError', code: 'ERR_CONFIG' })
  })
})
