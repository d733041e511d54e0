import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { bcs } from '@iota/iota-sdk/bcs'
import type { CoinStruct, EventId, IotaEvent } from '@iota/iota-sdk/client'
import { Transaction, TransactionDataBuilder } from '@iota/iota-sdk/transactions'
import { fromBase64, normalizeIotaAddress, toBase58, toBase64 } from '@iota/iota-sdk/utils'
import { verifyTransactionSignature } from '@iota/iota-sdk/verify'

/**
 * A stand-in IOTA Rebased JSON-RPC node for tests: it answers exactly the methods the
 * adapter calls (reference gas price, coins, execute, get transaction, query events) with
 * the shapes the SDK's types describe. It checks what a node would check of an anchor
 * transaction (signature, sender, gas objects, the move call) and emits the event the
 * Move module would. It is not a node: no Move execution, no gas accounting beyond a
 * version bump, no consensus.
 */
export interface FakeIotaNode {
  url: string
  packageId: string
  /** Gives `address` one coin of `balance` nanos. */
  fund(address: string, balance: bigint): void
  /** Emits an Anchored event as if `sender` had anchored `record` (another client); `undated` leaves out its time until `date`. */
  anchorAs(sender: string, record: string | Uint8Array, options?: { undated?: boolean }): string
  /** Gives the undated event of transaction `digest` the node's time now. */
  date(digest: string): void
  /** Methods called so far, in order. */
  calls: string[]
  close(): Promise<void>
}

const Anchored = bcs.struct('Anchored', { sender: bcs.Address, record: bcs.byteVector() })
const digestOf = (...parts: string[]): string => toBase58(createHash('sha256').update(parts.join('/')).digest())

export async function startFakeIotaNode (options: { packageId?: string, pageSize?: number, gasPrice?: number } = {}): Promise<FakeIotaNode> {
  const packageId = normalizeIotaAddress(options.packageId ?? '0x' + 'ab'.repeat(32))
  const eventType = `${packageId}::anchor::Anchored`
  const pageSize = options.pageSize ?? 3
  const coins = new Map<string, CoinStruct[]>()
  const transactions = new Set<string>()
  const events: IotaEvent[] = []
  const calls: string[] = []
  let counter = 0

  const emit = (digest: string, sender: string, record: Uint8Array, undated = false): void => {
    events.push({
      id: { txDigest: digest, eventSeq: '0' },
      packageId,
      transactionModule: 'anchor',
      sender,
      type: eventType,
      parsedJson: { sender, record: Array.from(record) },
      bcs: toBase64(Anchored.serialize({ sender, record }).toBytes()),
      bcsEncoding: 'base64',
      ...(undated ? {} : { timestampMs: String(Date.now()) })
    })
    transactions.add(digest)
  }

  const methods: Record<string, (params: unknown[]) => Promise<unknown>> = {
    iotax_getReferenceGasPrice: async () => String(options.gasPrice ?? 1000),
    iotax_getCoins: async ([owner]) => ({ data: coins.get(owner as string) ?? [], hasNextPage: false, nextCursor: null }),
    iota_getTransactionBlock: async ([digest]) => {
      if (!transactions.has(digest as string)) throw new Error(`unknown transaction ${String(digest)}`)
      return { digest, checkpoint: '1' }
    },
    iota_executeTransactionBlock: async ([txBytes, signatures]) => {
      const bytes = fromBase64(txBytes as string)
      const signer = await verifyTransactionSignature(bytes, (signatures as string[])[0] as string)
      const data = Transaction.from(bytes).getData()
      if (data.sender !== signer.toIotaAddress()) throw new Error('signature is not the sender\'s')
      const owned = coins.get(signer.toIotaAddress()) ?? []
      for (const ref of data.gasData.payment ?? []) {
        const coin = owned.find(c => c.coinObjectId === ref.objectId)
        if (coin === undefined || coin.version !== String(ref.version) || coin.digest !== ref.digest) throw new Error(`stale or foreign gas object ${ref.objectId}`)
      }
      const call = data.commands[0]?.MoveCall
      if (data.commands.length !== 1 || call?.package !== packageId || call.module !== 'anchor' || call.function !== 'anchor') throw new Error('not an anchor call')
      const input = data.inputs[0]?.Pure?.bytes
      if (input === undefined) throw new Error('anchor takes one pure vector<u8>')
      const digest = TransactionDataBuilder.getDigestFromBytes(bytes)
      for (const coin of owned) {
        coin.version = String(Number(coin.version) + 1)
        coin.digest = digestOf(coin.coinObjectId, coin.version)
      }
      emit(digest, signer.toIotaAddress(), bcs.byteVector().parse(fromBase64(input)))
      return { digest, effects: { status: { status: 'success' } } }
    },
    iotax_queryEvents: async ([query, cursor, limit, descending]) => {
      if (descending === true) throw new Error('the fake node pages ascending only')
      const matching = events.filter(e => e.type === (query as { MoveEventType?: string }).MoveEventType)
      const after = cursor == null ? 0 : matching.findIndex(e => e.id.txDigest === (cursor as EventId).txDigest && e.id.eventSeq === (cursor as EventId).eventSeq) + 1
      const data = matching.slice(after, after + Math.min(pageSize, (limit as number | null) ?? 50))
      return { data, hasNextPage: after + data.length < matching.length, nextCursor: data.at(-1)?.id ?? cursor ?? null }
    }
  }

  const server = createServer((req, res) => {
    void (async () => {
      const { id, method, params } = JSON.parse(await body(req)) as { id: number, method: string, params: unknown[] }
      calls.push(method)
      const handler = methods[method]
      try {
        if (handler === undefined) throw Object.assign(new Error(`method ${method} not found`), { code: -32601 })
        res.end(JSON.stringify({ jsonrpc: '2.0', id, result: await handler(params) }))
      } catch (err) {
        res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code: (err as { code?: number }).code ?? -32000, message: (err as Error).message } }))
      }
    })()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    packageId,
    calls,
    fund (address, balance) {
      const objectId = normalizeIotaAddress('0x' + createHash('sha256').update(`coin/${counter++}`).digest('hex'))
      const list = coins.get(address) ?? []
      list.push({ coinObjectId: objectId, version: '1', digest: digestOf(objectId, '1'), balance: String(balance), coinType: '0x2::iota::IOTA', previousTransaction: digestOf('genesis') })
      coins.set(address, list)
    },
    anchorAs (sender, record, options = {}) {
      const digest = digestOf('foreign', String(counter++))
      emit(digest, normalizeIotaAddress(sender), typeof record === 'string' ? new TextEncoder().encode(record) : record, options.undated)
      return digest
    },
    date (digest) {
      for (const event of events) if (event.id.txDigest === digest) event.timestampMs = String(Date.now())
    },
    async close () {
      server.closeAllConnections()
      await new Promise<void>((resolve, reject) => server.close(err => { if (err === undefined) resolve(); else reject(err) }))
    }
  }
}

async function body (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
