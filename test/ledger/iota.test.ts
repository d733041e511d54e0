import { Transaction } from '@iota/iota-sdk/transactions'
import { verifyTransactionSignature } from '@iota/iota-sdk/verify'
import { describe, expect, it } from 'vitest'
import { createLedger } from '../../src/ledger/index.ts'
import { buildAnchorTransaction, iotaKeypair, signAnchorTransaction } from '../../src/ledger/iota.ts'
import { createIdentity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'

const PACKAGE = '0x' + 'ab'.repeat(32)
const gas = [{ objectId: '0x' + '11'.repeat(32), version: '7', digest: '4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi' }]

describe('IOTA Rebased adapter, offline', () => {
  it('derives the IOTA keypair from the agent key: same Ed25519 public key, deterministic address', () => {
    const identity = createIdentity(randomSecretKey())
    const a = iotaKeypair(identity)
    expect(a.getPublicKey().toRawBytes()).toEqual(identity.publicKey)
    expect(iotaKeypair(identity).toIotaAddress()).toBe(a.toIotaAddress())
    expect(a.toIotaAddress()).toMatch(/^0x[0-9a-f]{64}$/)
  })

  it('builds an anchor transaction offline that carries the record to anchor::anchor', async () => {
    const identity = createIdentity(randomSecretKey())
    const keypair = iotaKeypair(identity)
    const jwt = await identity.sign({ type: 'vote', federation: 'fed', round: 1, proposal: 'a'.repeat(64), accept: true, score: 0, rationale: 'r' })
    const bytes = await buildAnchorTransaction({ sender: keypair.toIotaAddress(), packageId: PACKAGE, record: jwt, gasBudget: 10_000_000, gasPrice: 1000, gasPayment: gas })
    const data = Transaction.from(bytes).getData()
    expect(data.sender).toBe(keypair.toIotaAddress())
    expect(data.gasData.budget).toBe('10000000')
    const call = data.commands[0]?.MoveCall
    expect(call).toMatchObject({ package: PACKAGE, module: 'anchor', function: 'anchor' })
    const input = data.inputs[0]?.Pure?.bytes
    expect(input).toBeDefined()
    // A BCS vector<u8>: a ULEB128 length, then the record's bytes.
    expect(Buffer.from(input as string, 'base64').toString('utf8')).toContain(jwt)
  })

  it('signs the transaction so that the signature verifies for the agent\'s address, and not for tampered bytes', async () => {
    const identity = createIdentity(randomSecretKey())
    const keypair = iotaKeypair(identity)
    const bytes = await buildAnchorTransaction({ sender: keypair.toIotaAddress(), packageId: PACKAGE, record: 'x.y.z', gasBudget: 5_000_000, gasPrice: 1000, gasPayment: gas })
    const { signature } = await signAnchorTransaction(keypair, bytes)
    const publicKey = await verifyTransactionSignature(bytes, signature)
    expect(publicKey.toIotaAddress()).toBe(keypair.toIotaAddress())
    const tampered = Uint8Array.from(bytes)
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1
    await expect(verifyTransactionSignature(tampered, signature)).rejects.toThrow()
  })

  it('fails fast with BackendUnavailableError when no node answers', async () => {
    const identity = createIdentity(randomSecretKey())
    const ledger = await createLedger({ kind: 'iota', url: 'http://127.0.0.1:9', packageId: PACKAGE, gasBudget: 10_000_000 }, { dir: '/nonexistent', identity })
    const jwt = await identity.sign({ type: 'vote', federation: 'fed', round: 1, proposal: 'a'.repeat(64), accept: true, score: 0, rationale: 'r' })
    await expect(ledger.append(jwt)).rejects.toMatchObject({ name: 'BackendUnavailableError' })
    await expect(ledger.verify()).rejects.toMatchObject({ name: 'BackendUnavailableError' })
  })

  it('refuses to start without the agent identity, and refuses a badly signed record before any network call', async () => {
    await expect(createLedger({ kind: 'iota', url: 'http://127.0.0.1:9', packageId: PACKAGE, gasBudget: 1 }, { dir: '/x' })).rejects.toMatchObject({ name: 'KeystoreError' })
    const ledger = await createLedger({ kind: 'iota', url: 'http://127.0.0.1:9', packageId: PACKAGE, gasBudget: 1 }, { dir: '/x', identity: createIdentity(randomSecretKey()) })
    await expect(ledger.append('not.a.jwt')).rejects.toMatchObject({ name: 'InvalidRecordError' })
  })
})
