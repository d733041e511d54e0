import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { bcs } from '@iota/iota-sdk/bcs'
import { Transaction } from '@iota/iota-sdk/transactions'
import { toBase58, toBase64 } from '@iota/iota-sdk/utils'
import { verifyTransactionSignature } from '@iota/iota-sdk/verify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Vote } from '../../src/core/records.ts'
import { createIdentity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { createLedger, type Ledger } from '../../src/ledger/index.ts'
import {
  anchoredRecord, buildAnchorTransaction, createIotaLedger, iotaKeypair, selectGas, signAnchorTransaction
} from '../../src/ledger/iota.ts'
import { ledgerTests } from '../conformance/ledger.ts'
import { startFakeIotaNode, type FakeIotaNode } from './fake-iota-node.ts'

const PACKAGE = '0x' + 'ab'.repeat(32)
const gas = [{ objectId: '0x' + '11'.repeat(32), version: '7', digest: '4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi' }]
const vote = (n: number): Vote => ({ type: 'vote', federation: 'test', round: 1, proposal: String(n).padStart(64, 'a'), accept: true, score: 0.1, rationale: 'ok' })
const coin = (id: string, balance: number) => ({ coinObjectId: id, version: '1', digest: gas[0]?.digest as string, balance: String(balance), coinType: '0x2::iota::IOTA', previousTransaction: '' })

describe('IOTA Rebased adapter, offline', () => {
  it('derives the IOTA keypair from the agent key: same Ed25519 public key, same address every time', () => {
    const seed = randomSecretKey()
    const identity = createIdentity(seed)
    const a = iotaKeypair(identity)
    expect(a.getPublicKey().toRawBytes()).toEqual(identity.publicKey)
    expect(iotaKeypair(createIdentity(seed)).toIotaAddress()).toBe(a.toIotaAddress())
    expect(a.toIotaAddress()).toMatch(/^0x[0-9a-f]{64}$/)
    expect(iotaKeypair(createIdentity(randomSecretKey())).toIotaAddress()).not.toBe(a.toIotaAddress())
  })

  it('builds an anchor transaction offline, deterministically, that passes the exact record to anchor::anchor', async () => {
    const identity = createIdentity(randomSecretKey())
    const keypair = iotaKeypair(identity)
    const jwt = await identity.sign(vote(1))
    const input = { sender: keypair.toIotaAddress(), packageId: PACKAGE, record: jwt, gasBudget: 10_000_000, gasPrice: 1000, gasPayment: gas }
    const bytes = await buildAnchorTransaction(input)
    expect(await buildAnchorTransaction(input)).toEqual(bytes)
    const data = Transaction.from(bytes).getData()
    expect(data.sender).toBe(keypair.toIotaAddress())
    expect(data.gasData).toMatchObject({ budget: '10000000', price: '1000', owner: keypair.toIotaAddress(), payment: [{ objectId: gas[0]?.objectId, version: '7', digest: gas[0]?.digest }] })
    expect(data.commands).toHaveLength(1)
    expect(data.commands[0]?.MoveCall).toMatchObject({ package: PACKAGE, module: 'anchor', function: 'anchor', typeArguments: [], arguments: [{ Input: 0 }] })
    const pure = bcs.byteVector().parse(Buffer.from(data.inputs[0]?.Pure?.bytes as string, 'base64'))
    expect(new TextDecoder().decode(pure)).toBe(jwt)
  })

  it('signs so that the signature verifies for the agent\'s address and public key, and not for other bytes', async () => {
    const keypair = iotaKeypair(createIdentity(randomSecretKey()))
    const bytes = await buildAnchorTransaction({ sender: keypair.toIotaAddress(), packageId: PACKAGE, record: 'x.y.z', gasBudget: 5_000_000, gasPrice: 1000, gasPayment: gas })
    const { signature, digest } = await signAnchorTransaction(keypair, bytes)
    expect((await verifyTransactionSignature(bytes, signature)).toIotaAddress()).toBe(keypair.toIotaAddress())
    expect(await keypair.getPublicKey().verifyTransaction(bytes, signature)).toBe(true)
    expect(digest).toBe(await Transaction.from(bytes).getDigest())
    const tampered = Uint8Array.from(bytes)
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1
    expect(await keypair.getPublicKey().verifyTransaction(tampered, signature)).toBe(false)
    await expect(verifyTransactionSignature(tampered, signature)).rejects.toThrow()
  })

  it('picks the largest gas coins until they cover the budget', () => {
    const coins = [coin('0x1', 5), coin('0x2', 50), coin('0x3', 20)]
    expect(selectGas(coins, 40n)?.map(c => c.objectId)).toEqual(['0x2'])
    expect(selectGas(coins, 60n)?.map(c => c.objectId)).toEqual(['0x2', '0x3'])
    expect(selectGas(coins, 76n)).toBeUndefined()
    expect(selectGas([], 1n)).toBeUndefined()
  })

  it('decodes the record from an Anchored event in either BCS encoding', () => {
    const bytes = bcs.struct('Anchored', { sender: bcs.Address, record: bcs.byteVector() }).serialize({ sender: '0x1', record: new TextEncoder().encode('a.b.c') }).toBytes()
    expect(anchoredRecord({ bcs: toBase64(bytes), bcsEncoding: 'base64' })).toBe('a.b.c')
    expect(anchoredRecord({ bcs: toBase58(bytes), bcsEncoding: 'base58' })).toBe('a.b.c')
    expect(anchoredRecord({ bcs: 'AAA', bcsEncoding: 'base64' })).toBe('AAA')
  })

  it('fails fast with BackendUnavailableError when nothing listens', { timeout: 5_000 }, async () => {
    const identity = createIdentity(randomSecretKey())
    const ledger = await createLedger({ kind: 'iota', url: 'http://127.0.0.1:9', packageId: PACKAGE, gasBudget: 10_000_000 }, { dir: '/nonexistent', identity })
    await expect(ledger.append(await identity.sign(vote(1)))).rejects.toMatchObject({ name: 'BackendUnavailableError', code: 'ERR_BACKEND_UNAVAILABLE' })
    await expect(ledger.verify()).rejects.toMatchObject({ name: 'BackendUnavailableError' })
    await expect(ledger.get('x'.repeat(44))).rejects.toMatchObject({ name: 'BackendUnavailableError' })
  })

  it('gives BackendUnavailableError when a node accepts but never answers', { timeout: 5_000 }, async () => {
    const server = createServer(() => {})
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const ledger = await createIotaLedger({ url, packageId: PACKAGE, gasBudget: 1, identity: createIdentity(randomSecretKey()), requestTimeoutMs: 200 })
      await expect(ledger.verify()).rejects.toMatchObject({ name: 'BackendUnavailableError' })
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })

  it('refuses to start without the agent identity, and refuses a badly signed record before any network call', async () => {
    await expect(createLedger({ kind: 'iota', url: 'http://127.0.0.1:9', packageId: PACKAGE, gasBudget: 1 }, { dir: '/x' })).rejects.toMatchObject({ name: 'KeystoreError' })
    const ledger = await createLedger({ kind: 'iota', url: 'http://127.0.0.1:9', packageId: PACKAGE, gasBudget: 1 }, { dir: '/x', identity: createIdentity(randomSecretKey()) })
    await expect(ledger.append('not.a.jwt')).rejects.toMatchObject({ name: 'InvalidRecordError' })
  })
})

// The same conformance suite as the tangle, over JSON-RPC to a stand-in node.
const nodes = new WeakMap<Ledger, FakeIotaNode>()
async function iotaOn (node: FakeIotaNode): Promise<Ledger> {
  const identity = createIdentity(randomSecretKey())
  const ledger = await createIotaLedger({ url: node.url, packageId: node.packageId, gasBudget: 10_000_000, identity, pollIntervalMs: 10 })
  node.fund(ledger.address, 1_000_000_000n)
  nodes.set(ledger, node)
  return ledger
}
ledgerTests('iota (stand-in JSON-RPC node)', {
  setup: async () => iotaOn(await startFakeIotaNode()),
  teardown: async (ledger) => {
    await ledger.close()
    await nodes.get(ledger)?.close()
  },
  reopen: async (ledger) => {
    await ledger.close()
    return iotaOn(nodes.get(ledger) as FakeIotaNode)
  }
})

describe('IOTA Rebased adapter, against the stand-in node', () => {
  let node: FakeIotaNode
  beforeAll(async () => { node = await startFakeIotaNode({ pageSize: 2 }) })
  afterAll(async () => { await node.close() })

  it('refuses to anchor from an unfunded address (ConfigError), after calling nothing but reads', async () => {
    const identity = createIdentity(randomSecretKey())
    const ledger = await createIotaLedger({ url: node.url, packageId: node.packageId, gasBudget: 10_000_000, identity })
    const before = node.calls.length
    await expect(ledger.append(await identity.sign(vote(1)))).rejects.toMatchObject({ name: 'ConfigError' })
    expect(node.calls.slice(before)).not.toContain('iota_executeTransactionBlock')
  })

  it('reads records others anchored, skips a second anchoring of one, and leaves out what no issuer signed (found red-teaming: one stranger\'s junk event failed verify, and with it every audit)', async () => {
    const signer = createIdentity(randomSecretKey())
    const ledger = await iotaOn(node)
    const before = (await ledger.verify()).blocks
    const jwt = await signer.sign(vote(2))
    const foreign = node.anchorAs('0x' + '42'.repeat(32), jwt)
    await expect(ledger.append(jwt)).rejects.toMatchObject({ name: 'DuplicateRecordError' })
    node.anchorAs('0x' + '43'.repeat(32), jwt)
    const mine = await ledger.append(await signer.sign(vote(3)))
    expect(await ledger.get(foreign)).toMatchObject({ seq: before, record: jwt })
    expect(mine).toMatchObject({ seq: before + 1, parents: [foreign, ...(before > 0 ? [expect.any(String)] : [])] })
    expect(await ledger.verify()).toEqual({ ok: true, blocks: before + 2 })
    node.anchorAs('0x' + '44'.repeat(32), Uint8Array.of(0xff, 0xfe))
    const [head, payload] = jwt.split('.') as [string, string]
    node.anchorAs('0x' + '44'.repeat(32), `${head}.${payload}.${'A'.repeat(86)}`)
    node.anchorAs('0x' + '44'.repeat(32), await signer.sign(vote(7), { now: Math.floor(Date.now() / 1000) - 7200 }))
    const last = await ledger.append(await signer.sign(vote(8)))
    expect(last.seq).toBe(before + 2)
    expect(await ledger.verify()).toEqual({ ok: true, blocks: before + 3 })
    // One warning a read, however many events it leaves out (one each was a flood's log).
    const warnings: Array<object | undefined> = []
    const watched = await createIotaLedger({ url: node.url, packageId: node.packageId, gasBudget: 10_000_000, identity: signer, logger: { info () {}, warn (_, fields) { warnings.push(fields) } } })
    expect(await watched.verify()).toEqual({ ok: true, blocks: before + 3 })
    expect(warnings).toEqual([expect.objectContaining({ again: 1, invalid: 3 })])
  })

  it('dates a block by the node alone: an event the node lists without a time waits, and a backdated record is never dated by its own iat', async () => {
    const signer = createIdentity(randomSecretKey())
    const ledger = await iotaOn(node)
    const hourAgo = Math.floor(Date.now() / 1000) - 3600
    const backdated = await signer.sign(vote(4), { now: hourAgo, expiresIn: 7200 })
    const id = node.anchorAs('0x' + '45'.repeat(32), backdated, { undated: true })
    expect(await ledger.get(id), 'listed before the node dated it (it took the signer\'s iat, an hour back)').toBeUndefined()
    node.date(id)
    const block = await ledger.get(id)
    expect(block?.time).toBeGreaterThanOrEqual(hourAgo + 3000)
  })

  it('pays once for a record the node executed but does not list yet: a retry waits for it, and gets its block once it is listed', async () => {
    const [signer, other] = [createIdentity(randomSecretKey()), createIdentity(randomSecretKey())]
    const ledger = await createIotaLedger({ url: node.url, packageId: PACKAGE, gasBudget: 10_000_000, identity: signer, pollIntervalMs: 10, requestTimeoutMs: 2_000 })
    node.fund(ledger.address, 1_000_000_000n)
    const ahead = node.anchorAs('0x' + '46'.repeat(32), await other.sign(vote(5)), { undated: true })
    const jwt = await signer.sign(vote(6))
    const executed = (): number => node.calls.filter(c => c === 'iota_executeTransactionBlock').length
    const before = executed()
    for (let i = 0; i < 3; i++) await expect(ledger.append(jwt)).rejects.toMatchObject({ name: 'BackendUnavailableError' })
    expect(executed() - before, 'transactions paid for').toBe(1)
    node.date(ahead)
    expect(await ledger.append(jwt)).toMatchObject({ record: jwt })
    expect(executed() - before).toBe(1)
  })
})
