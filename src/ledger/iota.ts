import { bcs } from '@iota/iota-sdk/bcs'
import { IotaClient, IotaHTTPStatusError, IotaHTTPTransport, type CoinStruct, type EventId, type IotaEvent } from '@iota/iota-sdk/client'
import { Ed25519Keypair } from '@iota/iota-sdk/keypairs/ed25519'
import { Transaction, TransactionDataBuilder } from '@iota/iota-sdk/transactions'
import { fromBase58, fromBase64, normalizeIotaAddress } from '@iota/iota-sdk/utils'
import { BoundedMap } from '../core/bounded-map.ts'
import {
  BackendUnavailableError, ConclaveError, ConfigError, DuplicateRecordError, KeystoreError, LedgerCorruptError
} from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import type { AbortOptions } from '../core/options.ts'
import { verifyRecord, type Identity } from '../identity/index.ts'
import type { Block, BlocksOptions, Ledger, LedgerVerification } from './index.ts'

/**
 * The IOTA Rebased ledger (`@iota/iota-sdk`; the older `@iota/sdk` served the retired
 * Stardust network). Each record is anchored by a transaction that calls
 * `<packageId>::anchor::anchor(record: vector<u8>)` (Move source in `move/anchor/`),
 * which emits `Anchored { sender, record }`; the ledger reads those events back with
 * `queryEvents` (by MoveEventType, ascending).
 *
 * - Keys: the agent's Ed25519 did:key seed is its IOTA key (`Ed25519Keypair.fromSecretKey`),
 *   so one key signs records and pays gas; `address` is the IOTA address to fund.
 * - Append: verify the JWT, refuse a record already anchored, fetch the reference gas
 *   price and the address's IOTA coins, build the bytes offline with
 *   `buildAnchorTransaction`, sign with `signAnchorTransaction`, execute, wait for the
 *   checkpoint, read the event back, and return that block.
 * - Blocks: id = transaction digest (`digest:eventSeq` for a second event in one
 *   transaction); seq = order of first anchoring among the package's events; parents =
 *   the previous two blocks in that order, newest first (IOTA orders them; the parents
 *   restate that order, they are not a tip selection, and make every block descend from all
 *   earlier ones, so `append`'s `after` asks nothing more); time = the checkpoint's timestamp;
 *   pow = 0. A record that someone anchors again is skipped (the first anchoring counts).
 * - Only a record its issuer signed, valid at its event's time, is a block: anyone may call
 *   the package's `anchor`, and a stranger's junk is left out (with a warning), not damage.
 * - Verify re-reads every event from the node, re-checks every signature at its block's
 *   time, and checks that the node still lists the blocks this ledger saw, in order.
 * - A node that cannot be reached, times out or answers 5xx gives BackendUnavailableError;
 *   an unfunded address or a failed transaction gives ConfigError.
 *
 * What is tested, and how: keypair derivation, offline building, signing and signature
 * checks, event decoding, and the whole Ledger conformance suite against a stand-in
 * JSON-RPC node in the tests (`test/ledger/fake-iota-node.ts`) that answers the five
 * methods used here as the SDK types describe them. Not run here (no IOTA node reachable
 * from this machine): publishing the Move package, a real node's responses, gas
 * accounting, indexer lag. A record near the 16 KiB record limit may also exceed the
 * network's limit on one pure argument. To run it for real: `iota client publish
 * src/ledger/move/anchor` on devnet or testnet (https://api.devnet.iota.cafe,
 * https://api.testnet.iota.cafe), fund `address` from the faucet, set `packageId`.
 */
export interface IotaLedgerOptions {
  /** JSON-RPC endpoint of a full node. */
  url: string
  /** Package that holds the `anchor` module. */
  packageId: string
  /** Gas budget per anchor transaction, in nanos. */
  gasBudget: number
  /** The agent; its key signs and pays. Required. */
  identity?: Identity
  logger?: Logger
  /** Milliseconds one JSON-RPC request may take before the node counts as unavailable. @default 30_000 */
  requestTimeoutMs?: number
  /** Milliseconds between polls for a submitted transaction's checkpoint. @default 1_000 */
  pollIntervalMs?: number
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

/** An IOTA-backed Ledger, with the address that pays for its transactions. */
export interface IotaLedger extends Ledger {
  readonly address: string
}

/** The `move/anchor` event struct, as BCS. */
const Anchored = bcs.struct('Anchored', { sender: bcs.Address, record: bcs.byteVector() })

const IOTA_COIN = '0x2::iota::IOTA'

/** The agent's IOTA keypair: the same Ed25519 seed as its did:key. */
export function iotaKeypair (identity: Identity): Ed25519Keypair {
  return Ed25519Keypair.fromSecretKey(identity.exportSecretKey())
}

/** The Move event type the anchor module emits. */
export function anchoredEventType (packageId: string): string {
  return `${normalizeIotaAddress(packageId)}::anchor::Anchored`
}

/** The anchor transaction for one record, fully built offline (gas given explicitly). */
export async function buildAnchorTransaction (input: AnchorTransactionInput): Promise<Uint8Array> {
  const tx = new Transaction()
  tx.moveCall({
    target: `${normalizeIotaAddress(input.packageId)}::anchor::anchor`,
    arguments: [tx.pure.vector('u8', Array.from(new TextEncoder().encode(input.record)))]
  })
  tx.setSender(input.sender)
  tx.setGasPrice(input.gasPrice)
  tx.setGasBudget(input.gasBudget)
  tx.setGasPayment(input.gasPayment)
  return tx.build()
}

export interface BatchAnchorTransactionInput extends Omit<AnchorTransactionInput, 'record'> {
  /** Merkle root (src/ledger/merkle.ts) of the batch's records, 32 bytes. */
  root: Uint8Array
  /** How many records the root covers. */
  count: number
  /** Where the batch's records are (a content-store CID of the JWT list), so readers can fetch and re-hash them. */
  batch: string
}

/**
 * Builds the transaction that anchors a whole round's records at once: one call to
 * `anchor::anchor_root(root, count, batch)`, one fee. Each record then carries an
 * InclusionReceipt (merkle.ts) proving it is under that root.
 */
export async function buildBatchAnchorTransaction (input: BatchAnchorTransactionInput): Promise<Uint8Array> {
  if (input.root.length !== 32) throw new ConfigError(`a batch root is 32 bytes, not ${input.root.length}`)
  if (!Number.isInteger(input.count) || input.count < 1) throw new ConfigError('a batch anchors at least one record')
  const tx = new Transaction()
  tx.moveCall({
    target: `${normalizeIotaAddress(input.packageId)}::anchor::anchor_root`,
    arguments: [tx.pure.vector('u8', Array.from(input.root)), tx.pure.u64(input.count), tx.pure.string(input.batch)]
  })
  tx.setSender(input.sender)
  tx.setGasPrice(input.gasPrice)
  tx.setGasBudget(input.gasBudget)
  tx.setGasPayment(input.gasPayment)
  return tx.build()
}

/** Signs transaction bytes; `signature` is the serialized IOTA signature (scheme, signature, public key). */
export async function signAnchorTransaction (keypair: Ed25519Keypair, bytes: Uint8Array): Promise<{ bytes: string, signature: string, digest: string }> {
  const signed = await keypair.signTransaction(bytes)
  return { ...signed, digest: TransactionDataBuilder.getDigestFromBytes(bytes) }
}

/** The largest coins first, until they cover `budget`; undefined when they cannot. */
export function selectGas (coins: readonly CoinStruct[], budget: bigint): ObjectRef[] | undefined {
  const picked: ObjectRef[] = []
  let total = 0n
  for (const coin of [...coins].sort((a, b) => Number(BigInt(b.balance) - BigInt(a.balance)))) {
    picked.push({ objectId: coin.coinObjectId, version: coin.version, digest: coin.digest })
    total += BigInt(coin.balance)
    if (total >= budget) return picked
  }
  return undefined
}

/** The record an Anchored event carries (the raw event text when it does not decode). */
export function anchoredRecord (event: Pick<IotaEvent, 'bcs' | 'bcsEncoding'>): string {
  try {
    const bytes = event.bcsEncoding === 'base64' ? fromBase64(event.bcs) : fromBase58(event.bcs)
    return new TextDecoder('utf-8', { fatal: true }).decode(Anchored.parse(bytes).record)
  } catch {
    return event.bcs || '-'
  }
}

export async function createIotaLedger (options: IotaLedgerOptions): Promise<IotaLedger> {
  if (options.identity === undefined) throw new KeystoreError('the IOTA ledger needs the agent identity to sign transactions')
  const ledger = new IotaRebasedLedger(options, iotaKeypair(options.identity))
  ;(options.logger ?? silentLogger).info('IOTA ledger', { url: options.url, packageId: options.packageId, address: ledger.address })
  return ledger
}

/** The ledger as read from the node: blocks in order, and where reading stopped. */
interface View { blocks: Block[], byId: Map<string, Block>, records: Set<string>, cursor: EventId | null }

const emptyView = (): View => ({ blocks: [], byId: new Map(), records: new Set(), cursor: null })

class IotaRebasedLedger implements IotaLedger {
  readonly address: string
  readonly #client: IotaClient
  readonly #keypair: Ed25519Keypair
  readonly #options: IotaLedgerOptions
  readonly #logger: Logger
  #view = emptyView()
  #lock: Promise<unknown> = Promise.resolve()
  /** Records whose transaction the node executed but does not list yet, by their digest (found red-teaming: each retry paid gas again). */
  readonly #sent = new BoundedMap<string, string>(1024)

  constructor (options: IotaLedgerOptions, keypair: Ed25519Keypair) {
    const timeout = options.requestTimeoutMs ?? 30_000
    this.#client = new IotaClient({
      transport: new IotaHTTPTransport({
        url: options.url,
        fetch: async (input, init) => fetch(input, { ...init, signal: withTimeout(init?.signal, timeout) })
      })
    })
    this.#keypair = keypair
    this.address = keypair.toIotaAddress()
    this.#options = options
    this.#logger = options.logger ?? silentLogger
  }

  async append (jwt: string, options: AbortOptions = {}): Promise<Block> {
    options.signal?.throwIfAborted()
    await verifyRecord(jwt)
    return this.#exclusive(async () => {
      await this.#sync(this.#view, options)
      const sent = this.#sent.get(jwt)
      const listed = sent === undefined ? undefined : this.#view.byId.get(sent)
      if (listed !== undefined) return this.#anchored(jwt, listed)
      if (this.#view.records.has(jwt)) {
        this.#sent.delete(jwt) // anchored by someone else first
        throw new DuplicateRecordError('this signed record is already anchored')
      }
      const digest = sent ?? await this.#execute(jwt, options)
      await this.#reach(() => this.#client.waitForTransaction({ digest, signal: options.signal, timeout: this.#options.requestTimeoutMs ?? 30_000, pollInterval: this.#options.pollIntervalMs ?? 1_000 }), options)
      await this.#sync(this.#view, options)
      const block = this.#view.byId.get(digest)
      if (block === undefined) throw new BackendUnavailableError(`the node executed ${digest} but does not list its Anchored event with a time yet; a retry waits for it`)
      return this.#anchored(jwt, block)
    })
  }

  #anchored (jwt: string, block: Block): Block {
    this.#sent.delete(jwt)
    this.#logger.info('anchored on IOTA', { digest: block.id, seq: block.seq })
    return block
  }

  /** Pays for and executes the anchor transaction of `jwt`; its digest, kept until the node lists it (a retry waits, it does not pay again). */
  async #execute (jwt: string, options: AbortOptions): Promise<string> {
    const { signal } = options
    const budget = BigInt(this.#options.gasBudget)
    const [gasPrice, coins] = await Promise.all([
      this.#reach(() => this.#client.getReferenceGasPrice({ signal }), options),
      this.#reach(() => this.#client.getCoins({ owner: this.address, coinType: IOTA_COIN, signal }), options)
    ])
    const gasPayment = selectGas(coins.data, budget)
    if (gasPayment === undefined) throw new ConfigError(`IOTA address ${this.address} holds too little IOTA for a gas budget of ${budget} nanos; fund it`)
    const bytes = await buildAnchorTransaction({ sender: this.address, packageId: this.#options.packageId, record: jwt, gasBudget: budget, gasPrice, gasPayment })
    const { signature, digest } = await signAnchorTransaction(this.#keypair, bytes)
    const result = await this.#reach(() => this.#client.executeTransactionBlock({ transactionBlock: bytes, signature, options: { showEffects: true }, signal }), options)
    if (result.digest !== digest) throw new LedgerCorruptError(`the node executed ${result.digest}, not the signed transaction ${digest}`)
    const status = result.effects?.status
    if (status?.status !== 'success') throw new ConfigError(`anchor transaction ${digest} failed: ${status?.error ?? 'no effects returned'}`)
    this.#sent.set(jwt, digest)
    return digest
  }

  async get (id: string, options: AbortOptions = {}): Promise<Block | undefined> {
    const held = this.#view.byId.get(id)
    if (held !== undefined) return held
    await this.#exclusive(async () => this.#sync(this.#view, options))
    return this.#view.byId.get(id)
  }

  /** Each block approves the one before it, so it descends from every earlier block. */
  async descends (id: string, ancestor: string, options: AbortOptions = {}): Promise<boolean> {
    const [block, earlier] = [await this.get(id, options), await this.get(ancestor, options)]
    return block !== undefined && earlier !== undefined && earlier.seq < block.seq
  }

  async * blocks (options: BlocksOptions = {}): AsyncIterable<Block> {
    await this.#exclusive(async () => this.#sync(this.#view, options))
    for (const block of this.#view.blocks.slice(options.from ?? 0)) {
      options.signal?.throwIfAborted()
      yield block
    }
  }

  async verify (options: AbortOptions = {}): Promise<LedgerVerification> {
    return this.#exclusive(async () => {
      // A fresh read checks every record again (#sync takes only those valid at their block's time).
      const fresh = emptyView()
      await this.#sync(fresh, options)
      const lost = this.#view.blocks.find((b, seq) => fresh.blocks[seq]?.id !== b.id)
      if (lost !== undefined) {
        return { ok: false, blocks: lost.seq, failure: { seq: lost.seq, id: lost.id, error: new LedgerCorruptError(`the node no longer lists block ${lost.seq} (${lost.id}) where it was`) } }
      }
      return { ok: true, blocks: fresh.blocks.length }
    })
  }

  async close (): Promise<void> {
    await this.#lock
  }

  async #exclusive<T> (task: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(task)
    this.#lock = run.catch(() => undefined)
    return run
  }

  /** Reads the package's Anchored events after `view.cursor` into `view`. */
  async #sync (view: View, options: AbortOptions): Promise<void> {
    // One warning a read, not one an event: anyone may anchor thousands (found red-teaming).
    const left = { again: 0, invalid: 0, first: '' }
    try {
      await this.#read(view, options, left)
    } finally {
      if (left.again + left.invalid > 0) this.#logger.warn('IOTA events left out: records anchored again (the first anchoring counts), or holding no record valid at its time', { again: left.again, invalid: left.invalid, first: left.first })
    }
  }

  async #read (view: View, options: AbortOptions, left: { again: number, invalid: number, first: string }): Promise<void> {
    const query = { MoveEventType: anchoredEventType(this.#options.packageId) }
    for (;;) {
      const page = await this.#reach(() => this.#client.queryEvents({ query, cursor: view.cursor, order: 'ascending', signal: options.signal }), options)
      for (const event of page.data) {
        const time = timeOf(event)
        // Until the node dates an event it is not read, nor anything after it (the order
        // must hold): a time taken from the record would be the signer's to choose.
        if (time === undefined) return
        view.cursor = event.id
        const record = anchoredRecord(event)
        // Anyone may call the package's anchor: an event holding no record its issuer signed,
        // valid at the event's time, is no block (found red-teaming: one stranger's junk failed every audit).
        const again = view.records.has(record)
        if (again || await invalidAt(record, time)) {
          if (again) left.again++
          else left.invalid++
          left.first ||= event.id.txDigest
          continue
        }
        const id = event.id.eventSeq === '0' ? event.id.txDigest : `${event.id.txDigest}:${event.id.eventSeq}`
        const block: Block = { id, seq: view.blocks.length, parents: view.blocks.slice(-2).map(b => b.id).reverse(), record, time, pow: 0 }
        view.blocks.push(block)
        view.byId.set(id, block)
        view.records.add(record)
      }
      if (!page.hasNextPage || page.data.length === 0) return
    }
  }

  async #reach<T> (call: () => Promise<T>, options: AbortOptions): Promise<T> {
    options.signal?.throwIfAborted()
    try {
      return await call()
    } catch (err) {
      if (options.signal?.aborted === true) throw options.signal.reason
      if (unreachable(err)) throw new BackendUnavailableError(`no IOTA node answers at ${this.#options.url}`, { cause: err })
      throw err
    }
  }
}

function unreachable (err: unknown): boolean {
  if (err instanceof IotaHTTPStatusError) return err.status >= 500 || err.status === 408 || err.status === 429
  const name = (err as { name?: unknown } | null)?.name
  return err instanceof TypeError || name === 'TimeoutError'
}

function withTimeout (signal: AbortSignal | null | undefined, ms: number): AbortSignal {
  const timeout = AbortSignal.timeout(ms)
  return signal == null ? timeout : AbortSignal.any([signal, timeout])
}

/** Whether `record` is no record its issuer signed, valid at `time`. */
async function invalidAt (record: string, time: number): Promise<boolean> {
  return verifyRecord(record, { now: time }).then(() => false, (err: unknown) => {
    if (err instanceof ConclaveError) return true
    throw err
  })
}

/** The checkpoint's time in Unix seconds; undefined while the node gives none. */
function timeOf (event: IotaEvent): number | undefined {
  const ms = Number(event.timestampMs ?? NaN)
  return Number.isFinite(ms) && ms >= 1000 ? Math.floor(ms / 1000) : undefined
}
