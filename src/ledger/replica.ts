import { join } from 'node:path'
import { BackendUnavailableError, ConclaveError, ConfigError, DuplicateRecordError, InvalidRecordError, LedgerCorruptError } from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import type { AbortOptions } from '../core/options.ts'
import { SerialQueue } from '../core/serial-queue.ts'
import { verifyRecord } from '../identity/index.ts'
import { ReplicaBlock, type Bus, type Subscription } from '../transport/index.ts'
import { BlockFile, BlockIndex, hashId, mine, proofFault, type BlockFormat, type Checked } from './dag.ts'
import type { Block, Ledger, LedgerVerification } from './index.ts'

/**
 * The replicated tangle: one ledger shared by processes on different machines, with no
 * central server. Every process keeps its own copy in `${dir}/replica.jsonl`; blocks travel
 * on the federation's bus room as `{ kind: 'block' }` messages, and every copy checks each
 * one for itself before it keeps it.
 *
 * - The file is the tangle's format (dag.ts) under the header `{"replica":1,"difficulty":D}`,
 *   but a block id is the sha-256 hex of JSON `[parents, record, time, pow, difficulty]`:
 *   it leaves out `seq`, which is this copy's ingest order, so every copy computes the same
 *   id for the same block. Proof of work and tip selection are the tangle's.
 * - `append` mines a block over this copy's tips, publishes it, and resolves once it has
 *   come back through the bus and been ingested, so every copy, the author's included,
 *   keeps blocks in the order the bus delivered them. Appends from one copy are serialised:
 *   each new block sees the one before it. Aborting while the block is on its way stops the
 *   wait, not the block: it may still be anchored.
 * - Ingestion runs one block at a time and checks the schema, the id hash (which covers the
 *   difficulty), the proof of work, the record's signature (as of the block's time: an old
 *   block is not refused for having expired since), that its parents are known, and that its
 *   record is not anchored under another id. A block whose parents have not arrived waits
 *   (at most MAX_PENDING of them) and is ingested right after them. A block already known is
 *   ignored (delivery is at-least-once). A bad block is logged and never written; ingestion
 *   of good ones goes on.
 * - Copies agree on the set of blocks as long as they all receive the same blocks; they
 *   agree on the order too when the bus delivers in one order to everyone (a Matrix room's
 *   timeline does). Where two blocks anchor the same record, the first delivered wins.
 * - A copy only sees blocks published while it is subscribed: every copy must listen before
 *   the first block (hence the bus's 'hello'). Nor does a restarted copy ask others for what
 *   it missed while down; the Matrix bus, though, resumes from its saved sync token, so a
 *   process that keeps its token does receive what was published meanwhile.
 * - Without a bus the copy is read-only (an audit of a run directory): its file must exist
 *   and is never written, `append` throws ConfigError, and `get` does not wait for blocks
 *   that cannot arrive.
 * - Damage is reported as the tangle reports it: the file still opens, `verify()` names the
 *   first bad block and `blocks()` yields the good prefix; the copy is then neither extended
 *   by `append` nor by ingestion.
 */
export interface ReplicaOptions {
  /** Folder that holds `replica.jsonl`; created when missing. */
  dir: string
  /** The federation's bus; leave out (with `room`) for a read-only copy. */
  bus?: Bus
  /** The bus room the copies share: the federation's room. */
  room?: string
  /**
   * Leading zero bits required of block ids; every copy must use the same. A new file takes
   * it; an existing file keeps its own, and opening it with another is a ConfigError.
   * @default 8 for a new file
   */
  difficulty?: number
  logger?: Logger
  /** Unix seconds, the time a new block carries. @default the system clock */
  clock?: () => number
  /** How long `append` waits for its block to come back, and `get` for an unknown block to arrive. @default 30_000 */
  waitMs?: number
}

const DEFAULT_DIFFICULTY = 8
const DEFAULT_WAIT_MS = 30_000
/** Blocks held for missing parents; beyond this a new one is dropped (a flood, or a parent that never comes). */
const MAX_PENDING = 10_000

const REPLICA: BlockFormat = { name: 'replica', id: replicaId }
/** The file a replica keeps in its `dir`. */
export const REPLICA_FILE = `${REPLICA.name}.jsonl`

/** A block's id in every copy: its content and the difficulty, not its local `seq`. */
function replicaId (b: ReplicaBlock, difficulty: number): string {
  return hashId([b.parents, b.record, b.time], b.pow, difficulty)
}

export async function openReplica (options: ReplicaOptions): Promise<Ledger> {
  if ((options.bus === undefined) !== (options.room === undefined)) throw new ConfigError('a replica needs both a bus and a room, or neither (read-only)')
  const logger = options.logger ?? silentLogger
  const { file, checked } = await BlockFile.open(options.dir, REPLICA, options.difficulty ?? DEFAULT_DIFFICULTY, logger, { readOnly: options.bus === undefined })
  if (options.difficulty !== undefined && checked.failure === undefined && checked.difficulty !== options.difficulty) {
    await file.close()
    throw new ConfigError(`${join(options.dir, REPLICA_FILE)} has difficulty ${checked.difficulty}, not ${options.difficulty}: every copy must use the same`)
  }
  const replica = new Replica(file, checked, logger, options.waitMs ?? DEFAULT_WAIT_MS, options.clock)
  if (options.bus !== undefined && options.room !== undefined) {
    try {
      await replica.listen(options.bus, options.room)
    } catch (err) {
      await replica.close()
      throw err
    }
  }
  return replica
}

/** What a caller waiting on a block id learns: the block, or why it was refused. */
type Outcome = Block | ConclaveError

class Replica implements Ledger {
  readonly #file: BlockFile
  readonly #difficulty: number
  readonly #logger: Logger
  readonly #waitMs: number
  readonly #clock: () => number
  readonly #held: BlockIndex
  /** Checked blocks waiting for parents, by id; and, per missing parent, the ids that wait on it. */
  readonly #pending = new Map<string, ReplicaBlock>()
  readonly #orphans = new Map<string, string[]>()
  /** Callers waiting for a block id to be ingested or refused. */
  readonly #watchers = new Map<string, Set<(outcome: Outcome) => void>>()
  /** Ingestion, one block at a time; `verify` runs on it too, so it never reads a half-written line. */
  readonly #ingest = new SerialQueue()
  /** This copy's appends, one at a time, so each new block sees the one before it. */
  readonly #appends = new SerialQueue()
  #bus?: { bus: Bus, room: string, subscription: Subscription }
  #closed = false

  constructor (file: BlockFile, checked: Checked, logger: Logger, waitMs: number, clock = (): number => Math.floor(Date.now() / 1000)) {
    this.#file = file
    this.#difficulty = checked.difficulty
    this.#logger = logger
    this.#waitMs = waitMs
    this.#clock = clock
    this.#held = new BlockIndex(checked.blocks)
  }

  async listen (bus: Bus, room: string): Promise<void> {
    const subscription = await bus.subscribe(room, message => {
      // Queued, not awaited: the bus goes on delivering while blocks are checked.
      if (message.kind !== 'block') return
      this.#ingest.run(() => this.#receive(message.block)).catch((err: unknown) => {
        this.#logger.warn('replica ingestion failed', { id: message.block.id, error: (err as Error).message })
      })
    })
    this.#bus = { bus, room, subscription }
  }

  async append (jwt: string, options: AbortOptions = {}): Promise<Block> {
    options.signal?.throwIfAborted()
    const listening = this.#bus
    if (listening === undefined) throw new ConfigError('this replica was opened without a bus (read-only); it cannot append')
    return this.#appends.run(async () => {
      options.signal?.throwIfAborted()
      await this.#ingest.run(async () => {}) // what has arrived so far counts: its records, its tips
      if (this.#closed) throw new BackendUnavailableError('the replica is closed')
      this.#file.assertExtendable()
      if (this.#held.anchors(jwt)) throw new DuplicateRecordError('this signed record is already anchored')
      const time = this.#clock()
      await verifyRecord(jwt, { now: time })
      const parents = this.#held.parents()
      const { id, pow } = await mine([parents, jwt, time], this.#difficulty, options.signal)
      if (this.#closed) throw new BackendUnavailableError('the replica is closed')
      // Another copy may have mined this very block (same record, parents and second) meanwhile.
      const known = this.#held.get(id)
      if (known !== undefined) return known
      const watch = this.#watch(id, options.signal)
      try {
        await listening.bus.publish(listening.room, { kind: 'block', block: { id, parents, record: jwt, time, pow } }, options)
      } catch (err) {
        watch.cancel()
        throw err
      }
      const outcome = await watch.arrival
      if (outcome === undefined) throw new BackendUnavailableError(`block ${id} did not come back through bus room ${listening.room} within ${this.#waitMs} ms`)
      if (outcome instanceof ConclaveError) throw outcome
      return outcome
    })
  }

  /**
   * The block, once ingestion queued so far is done; an unknown block is waited for up to
   * `waitMs`, since a record is announced right after its block and may be asked for first.
   */
  async get (id: string, options: AbortOptions = {}): Promise<Block | undefined> {
    options.signal?.throwIfAborted()
    await this.#ingest.run(async () => {})
    const known = this.#held.get(id)
    if (known !== undefined || this.#bus === undefined || this.#closed) return known
    const outcome = await this.#watch(id, options.signal).arrival
    return outcome instanceof ConclaveError ? undefined : outcome
  }

  /** Blocks in this copy's ingest order, after what has arrived so far is ingested. */
  async * blocks (options: AbortOptions = {}): AsyncIterable<Block> {
    await this.#ingest.run(async () => {})
    yield * this.#held.snapshot(options.signal)
  }

  /** Re-reads `replica.jsonl` and re-checks every line; also checks it still holds what this copy ingested. */
  async verify (options: AbortOptions = {}): Promise<LedgerVerification> {
    options.signal?.throwIfAborted()
    return this.#ingest.run(async () => this.#file.verify(this.#held.blocks, options.signal))
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#bus?.subscription.unsubscribe()
    for (const id of [...this.#watchers.keys()]) this.#settle(id, new BackendUnavailableError('the replica closed before the block arrived'))
    await this.#appends.run(async () => {})
    await this.#ingest.run(async () => {})
    await this.#file.close()
  }

  /** Checks a block from the bus; keeps it, holds it for its parents, or refuses it. */
  async #receive (raw: unknown): Promise<void> {
    if (this.#closed) return
    const parsed = ReplicaBlock.safeParse(raw)
    if (!parsed.success) { this.#refuse(undefined, new InvalidRecordError(`not a replica block: ${parsed.error.issues[0]?.message ?? 'invalid'}`)); return }
    const b = parsed.data
    if (this.#held.has(b.id) || this.#pending.has(b.id)) return
    const fault = proofFault(b.id, replicaId(b, this.#difficulty), this.#difficulty)
    // Not the block its id names, so nobody waiting on that id hears of it.
    if (fault !== undefined) { this.#refuse(b.id, new LedgerCorruptError(`block ${b.id}: ${fault} (difficulty ${this.#difficulty})`), false); return }
    if (new Set(b.parents).size !== b.parents.length) { this.#refuse(b.id, new LedgerCorruptError(`block ${b.id} names the same parent twice`)); return }
    try {
      await verifyRecord(b.record, { now: b.time })
    } catch (err) {
      this.#refuse(b.id, err instanceof ConclaveError ? err : new LedgerCorruptError(`block ${b.id}: its record does not verify`, { cause: err }))
      return
    }
    const missing = b.parents.filter(p => !this.#held.has(p))
    if (missing.length === 0) return this.#keepWithDescendants(b)
    if (this.#pending.size >= MAX_PENDING) { this.#refuse(b.id, new BackendUnavailableError(`block ${b.id} dropped: ${MAX_PENDING} blocks already wait for their parents`)); return }
    this.#pending.set(b.id, b)
    for (const parent of missing) this.#orphans.set(parent, [...this.#orphans.get(parent) ?? [], b.id])
  }

  /**
   * Keeps `first`, then every held block that it (or one kept after it) completes, in
   * arrival order. A held child of a refused block can never be kept: it is refused in turn.
   */
  async #keepWithDescendants (first: ReplicaBlock): Promise<void> {
    const ready = [first]
    for (let b = ready.shift(); b !== undefined; b = ready.shift()) {
      const kept = await this.#keep(b)
      for (const child of this.#orphans.get(b.id) ?? []) {
        const held = this.#pending.get(child)
        if (held === undefined || (kept && !held.parents.every(p => this.#held.has(p)))) continue
        this.#pending.delete(child)
        ready.push(held)
      }
      this.#orphans.delete(b.id)
    }
  }

  /** Writes a checked block; false when it is refused. */
  async #keep (b: ReplicaBlock): Promise<boolean> {
    if (!b.parents.every(p => this.#held.has(p))) return this.#refuse(b.id, new LedgerCorruptError(`block ${b.id} approves a block this replica refused`))
    if (this.#held.anchors(b.record)) return this.#refuse(b.id, new DuplicateRecordError(`block ${b.id} anchors a record already anchored under another block`))
    const block: Block = { id: b.id, seq: this.#held.blocks.length, parents: b.parents, record: b.record, time: b.time, pow: b.pow }
    try {
      await this.#file.append(block)
    } catch (err) {
      // LedgerCorruptError when this copy is damaged: it is not extended, by the bus either.
      return this.#refuse(b.id, err instanceof ConclaveError ? err : new BackendUnavailableError(`could not write block ${b.id}`, { cause: err }))
    }
    this.#held.add(block)
    this.#settle(block.id, block)
    return true
  }

  #refuse (id: string | undefined, error: ConclaveError, tellWaiting = true): false {
    this.#logger.warn('replica refused a block', { id, error: error.name, reason: error.message })
    if (id !== undefined && tellWaiting) this.#settle(id, error)
    return false
  }

  /** Resolves with the block once `id` is ingested, the error if it is refused, or undefined after `waitMs`. */
  #watch (id: string, signal?: AbortSignal): { arrival: Promise<Outcome | undefined>, cancel: () => void } {
    const { promise, resolve, reject } = Promise.withResolvers<Outcome | undefined>()
    const waiting = this.#watchers.get(id) ?? new Set()
    this.#watchers.set(id, waiting)
    const stop = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', abort)
      waiting.delete(settle)
      if (waiting.size === 0 && this.#watchers.get(id) === waiting) this.#watchers.delete(id)
    }
    const settle = (outcome?: Outcome): void => { stop(); resolve(outcome) }
    const abort = (): void => { stop(); reject(signal?.reason) }
    const timer = setTimeout(settle, this.#waitMs)
    signal?.addEventListener('abort', abort, { once: true })
    waiting.add(settle)
    if (signal?.aborted === true) abort()
    return { arrival: promise, cancel: () => { settle() } }
  }

  #settle (id: string, outcome: Outcome): void {
    for (const settle of [...this.#watchers.get(id) ?? []]) settle(outcome)
  }
}
