import { IotaClient } from '@iota/iota-sdk/client'
import { Ed25519Keypair } from '@iota/iota-sdk/keypairs/ed25519'
import { Transaction } from '@iota/iota-sdk/transactions'
import { BackendUnavailableError, ConclaveError, KeystoreError, LedgerCorruptError } from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import type { AbortOptions } from '../core/options.ts'
import { verifyRecord, type Identity } from '../identity/index.ts'
import type { Block, Ledger, LedgerVerification } from './index.ts'

/**
 * The IOTA Rebased ledger (`@iota/iota-sdk`; the older `@iota/sdk` served the retired
 * Stardust network). Each record is anchored by a transaction that calls
 * `<packageId>::anchor::anchor(record)` (Move source in `move/anchor/`), which emits an
 * `Anchored { sender, record }` event; the ledger reads those events back in order.
 * The agent's Ed25519 did:key seed is its IOTA key, so one key signs records and pays.
 *
 * What runs offline and is tested: keypair derivation, transaction building with explicit
 * gas, signing, and signature verification. What has not been run here (no IOTA node is
 * reachable from this machine): publishing the Move package, submitting transactions,
 * reading events. Use devnet or testnet: `url` https://api.devnet.iota.cafe or
 * https://api.testnet.iota.cafe, fund the address from the faucet, publish the package
 * with `iota client publish src/ledger/move/anchor`, and put its id in `packageId`.
 */
export interface IotaLedgerOptions {
  url: string
  packageId: string
  gasBudget: number
  identity?: Identity
  logger?: Logger
}

export interface ObjectRef {
  objectId: string
  version: string | number
  digest: string
}

export interface AnchorTransactionInput {
  sender: string
  packageId: string
  /** The signed record (JWT) to anchor. */
  record: string
  gasBudget: number | bigint
  gasPrice: number | bigint
  gasPayment: ObjectRef[]
}

/** The agent's IOTA keypair: the same Ed25519 seed as its did:key. */
export function iotaKeypair (identity: Identity): Ed25519Keypair {
  return Ed25519Keypair.fromSecretKey(identity.exportSecretKey())
}

/** The anchor transaction for one record, fully built offline (gas given explicitly). */
export async function buildAnchorTransaction (input: AnchorTransactionInput): Promise<Uint8Array> {
  const tx = anchorCall(input.packageId, input.record)
  tx.setSender(input.sender)
  tx.setGasPrice(input.gasPrice)
  tx.setGasBudget(input.gasBudget)
  tx.setGasPayment(input.gasPayment)
  return tx.build()
}

export async function signAnchorTransaction (keypair: Ed25519Keypair, bytes: Uint8Array): Promise<{ bytes: string, signature: string }> {
  return keypair.signTransaction(bytes)
}

function anchorCall (packageId: string, record: string): Transaction {
  const tx = new Transaction()
  tx.moveCall({ target: `${packageId}::anchor::anchor`, arguments: [tx.pure.vector('u8', Array.from(new TextEncoder().encode(record)))] })
  return tx
}

export async function createIotaLedger (options: IotaLedgerOptions): Promise<Ledger> {
  if (options.identity === undefined) throw new KeystoreError('the IOTA ledger needs the agent identity to sign transactions')
  return new IotaLedger(options, iotaKeypair(options.identity))
}

interface AnchoredEvent { sender: string, record: number[] | string }

class IotaLedger implements Ledger {
  readonly #client: IotaClient
  readonly #keypair: Ed25519Keypair
  readonly #options: IotaLedgerOptions
  readonly #logger: Logger

  constructor (options: IotaLedgerOptions, keypair: Ed25519Keypair) {
    this.#client = new IotaClient({ url: options.url })
    this.#keypair = keypair
    this.#options = options
    this.#logger = options.logger ?? silentLogger
  }

  async append (jwt: string, options: AbortOptions = {}): Promise<Block> {
    await verifyRecord(jwt, {})
    const tx = anchorCall(this.#options.packageId, jwt)
    tx.setGasBudget(this.#options.gasBudget)
    const result = await this.#reach(() => this.#client.signAndExecuteTransaction({ transaction: tx, signer: this.#keypair, options: { showEvents: true } }), options)
    await this.#reach(() => this.#client.waitForTransaction({ digest: result.digest, signal: options.signal }), options)
    this.#logger.info('anchored on IOTA', { digest: result.digest })
    return { id: result.digest, seq: 0, parents: [], record: jwt, time: Math.floor(Date.now() / 1000), pow: 0 }
  }

  async get (id: string, options: AbortOptions = {}): Promise<Block | undefined> {
    for await (const block of this.blocks(options)) if (block.id === id) return block
    return undefined
  }

  /** Anchored events in chain order; parents are the previous two anchors (the order itself is IOTA's). */
  async * blocks (options: AbortOptions = {}): AsyncIterable<Block> {
    let cursor: Parameters<IotaClient['queryEvents']>[0]['cursor'] = null
    const seen: string[] = []
    for (;;) {
      const page = await this.#reach(() => this.#client.queryEvents({ query: { MoveEventType: `${this.#options.packageId}::anchor::Anchored` }, cursor, order: 'ascending' }), options)
      for (const event of page.data) {
        const parsed = event.parsedJson as AnchoredEvent
        const record = typeof parsed.record === 'string' ? parsed.record : new TextDecoder().decode(Uint8Array.from(parsed.record))
        const id = event.id.txDigest
        yield { id, seq: seen.length, parents: seen.slice(-2), record, time: Math.floor(Number(event.timestampMs ?? 0) / 1000) || 1, pow: 0 }
        seen.push(id)
      }
      if (!page.hasNextPage) return
      cursor = page.nextCursor ?? null
    }
  }

  async verify (options: AbortOptions = {}): Promise<LedgerVerification> {
    let count = 0
    for await (const block of this.blocks(options)) {
      try {
        await verifyRecord(block.record, { now: block.time })
      } catch (err) {
        const error = err instanceof ConclaveError ? err : new LedgerCorruptError('anchored record does not verify', { cause: err })
        return { ok: false, blocks: count, failure: { seq: block.seq, id: block.id, error } }
      }
      count++
    }
    return { ok: true, blocks: count }
  }

  async close (): Promise<void> {}

  async #reach<T> (call: () => Promise<T>, options: AbortOptions): Promise<T> {
    options.signal?.throwIfAborted()
    try {
      return await call()
    } catch (err) {
      if (err instanceof TypeError || /fetch failed|ECONNREFUSED|ENOTFOUND/.test(String((err as Error).message))) {
        throw new BackendUnavailableError(`no IOTA node answers at ${this.#options.url}`, { cause: err })
      }
      throw err
    }
  }
}
