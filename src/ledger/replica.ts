import {
  BackendUnavailableError, ConclaveError, ConfigError, DuplicateRecordError, ImplausibleBlockTimeError, InvalidRecordError,
  LedgerCorruptError, NotMemberError, OrphanLimitError, RecordTimeMismatchError, WrongFederationError
} from '../core/errors.ts'
import { ANCHOR_SKEW_SECONDS } from '../core/limits.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import type { Record } from '../core/records.ts'
import type { AbortOptions } from '../core/options.ts'
import { SerialQueue } from '../core/serial-queue.ts'
import { peekRecord, verifyRecord } from '../identity/index.ts'
import { ReplicaBlock, type Bus, type Subscription } from '../transport/index.ts'
import { noteCopyMade, readCopyMade } from './copy-made.ts'
import { BlockFile, BlockIndex, hashId, mine, proofFault, type BlockFormat, type Checked } from './dag.ts'
import { Gaps, type Gap } from './gaps.ts'
import { WaitingFile } from './waiting.ts'
import type { AppendOptions, Block, BlocksOptions, GetOptions, Ledger, LedgerVerification } from './index.ts'

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
 * - `append` mines a block over this copy's tips (one of them descending from `after` when
 *   given), dated by this copy's clock or its newest parent's time if later, publishes it,
 *   and resolves once it has come back through the bus and been ingested, so every copy, the
 *   author's included, keeps blocks in the order the bus delivered them. Appends from one copy
 *   are serialised: each new block sees the one before it. Aborting while the block is on its
 *   way stops the wait, not the block: it may still be anchored.
 * - Ingestion runs one block at a time, cheapest checks first, so a flood costs little: the
 *   schema, the id hash (which covers the difficulty) and proof of work, the time, the
 *   federation the record names (`federation`), its signer against the members, the signer's
 *   share of held orphans, and only then the record's signature (as of the block's time: an
 *   old block is not refused for having expired since). A block already known is ignored (delivery is at-least-once). A
 *   bad block is logged and never written, with a named error; ingestion of good ones goes on.
 * - Members: once this copy holds a charter, only blocks its members signed are kept; before
 *   it, only the founder's (`founder`). A block that waits for its parents before the charter
 *   may be a member's that came early (a bus may reorder): it is held if its signer is one of
 *   the members this copy's run names (`members`), or whoever signed it when the run names
 *   none, and judged when it is kept; once the charter is kept, non-members' waiting blocks
 *   are refused. A copy opened without a founder keeps any signer's blocks until a charter
 *   arrives, and the first charter decides (tests; not for a federation).
 * - Time: a block dated more than `aheadSeconds` ahead of when the room took it (where the
 *   bus says: a Matrix room's time, as the homeserver of this copy's account took an event its
 *   own users sent, the same for every copy on that homeserver; else this copy's clock), more
 *   than `lagSeconds` before the newest block this copy holds, before the charter, or before
 *   any block it approves is refused (ImplausibleBlockTimeError). A live copy's newest block
 *   is about its clock, so a block from the past is refused; a copy catching up after a
 *   restart (the Matrix bus delivers from its saved sync token what was published meanwhile)
 *   measures each block against the history it has ingested so far, in the order every copy
 *   ingested it, so history still syncs. Judged by the room's time, a block dated ahead is
 *   refused by every copy alike, and taken by all at the same place when it comes again;
 *   judged by copies' clocks, a block right at the bound splits copies: it is refused for now
 *   and asked for again (gaps.ts). The lag bound is this copy's own: a block dated
 *   back right at it is refused for good unless another signer's waiting block descends from
 *   it (that signer's copy kept it within its own bound).
 * - Orphans: a block whose parents have not arrived waits, at most MAX_ORPHANS_PER_SENDER per
 *   signer of its record (OrphanLimitError beyond: a flood fills only the share of the signer
 *   whose records it carries, so it can neither evict nor crowd out another member's early
 *   block), and one per record (DuplicateRecordError: a record re-wrapped by whoever saw it go
 *   by takes no share, and a waiting re-wrap is refused once the record's own block is kept).
 *   Another federation's records are refused before they wait, as are blocks dated before the
 *   charter (those that waited before it came too), and a record signed more than
 *   ANCHOR_SKEW_SECONDS from its block's time may wait only for a waiting block that approves
 *   it: a waiting block of the same signer whose own record is not so signed. So a member's
 *   records from an earlier run under this federation id fill no share. A waiting block is ingested right after its
 *   parents. While no members are known (no charter, and the run names none), at most
 *   MAX_ORPHANS wait in all, the founder's aside: throwaway keys can fill that, so a federation
 *   names its members. A refused block's waiting descendants are refused with it.
 * - Roots: a federation's copy (one given its `founder`) keeps one block that approves none,
 *   its charter, so every block it keeps descends from the charter; where the run names its
 *   members, only a charter naming them (not an earlier run's under this id, replayed first).
 * - Copies agree on the set of blocks as long as they all receive the same blocks; they
 *   agree on the order too when the bus delivers in one order to everyone (a Matrix room's
 *   timeline does). Where two blocks anchor the same record, the first delivered wins.
 *   Judged by copies' clocks, the future bound is hygiene, not agreement: a copy may keep a
 *   block others refused as dated ahead, and take it at another place in its order.
 * - A copy only sees blocks published while it is subscribed: every copy must listen before
 *   the first block (hence the bus's 'hello'). A block whose parent this copy lacks (it missed
 *   it, or refused it as dated ahead of its clock when copies with clocks a second ahead kept
 *   it) waits, and the copy asks the room for the parent (gaps.ts), and for a block a caller
 *   waits for (`get`: an announced record's); copies that hold it publish it again, and it is
 *   checked as any block, so it is kept once no longer dated ahead, right before the blocks
 *   that waited for it. A block refused as dated ahead is not yet refused for those waiting:
 *   they go on waiting. Such a copy then holds that block later in its order than the others.
 *   The Matrix bus also resumes from its saved sync token, so a process that keeps its token
 *   receives what was published while it was down.
 * - Restarts: the blocks waiting for parents are kept in `${dir}/waiting.jsonl` (waiting.ts) and
 *   taken back when the copy opens, and each block is acked to the bus (Delivery.ack) once it is
 *   kept, refused or noted as waiting, so the bus resumes before one that was not: a copy
 *   restarted between a block and its parent keeps the block where the others do.
 * - Without a bus the copy is read-only (an audit of a run directory): its file must exist
 *   and is never written, its waiting blocks are not read, `append` throws ConfigError, and
 *   `get` does not wait for blocks that cannot arrive.
 * - Damage is reported as the tangle reports it: the file still opens, `verify()` names the
 *   first bad block and `blocks()` yields the good prefix; the copy is then neither extended
 *   by `append` nor by ingestion. A half-written last line (a kill in the middle of a write) is
 *   dropped as the copy opens, as the tangle drops it: the bus hands that block over again.
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
  /** Unix seconds: the time a new block carries, and what arriving blocks' times are judged by where the bus does not say when the room took them. @default the system clock */
  clock?: () => number
  /** How long `append` waits for its block to come back, and `get` for an unknown block to arrive. @default 30_000 */
  waitMs?: number
  /**
   * The DID that anchors the federation's charter: until this copy holds a charter, only its
   * blocks are kept. Leave out only where no federation is known (tests): then any signer's
   * blocks are kept until the first charter arrives.
   */
  founder?: string
  /**
   * The members this copy's run names (its config's): before the charter, only their blocks
   * may wait for parents, so strangers' orphans cannot crowd out a member's early block. The
   * charter, once kept, decides who is a member. Leave out where none are known in advance.
   */
  members?: readonly string[]
  /**
   * The federation's id, as its records name it: a block carrying another federation's record
   * is refused on arrival, before it may wait, so a member's records from elsewhere (the same
   * key in another federation) cannot fill its share of waiting blocks. Once the charter is
   * kept, its federation is taken. Leave out where none is known in advance.
   */
  federation?: string
  /** How far ahead of when the room took it (where the bus says; else of this copy's clock) a block may be dated, in seconds. @default 60 */
  aheadSeconds?: number
  /** How far before the newest block this copy holds an arriving block may be dated, in seconds. @default 300 */
  lagSeconds?: number
  /** How often this copy asks the room for parents it lacks (gaps.ts), and the first wait before it does. @default 2_000 */
  askMs?: number
  /** The federation's accounts on the bus (its members' Matrix accounts): each has answers to its wants of its own, whoever else floods (gaps.ts). */
  accounts?: readonly string[]
}

const DEFAULT_DIFFICULTY = 8
const DEFAULT_WAIT_MS = 30_000
const DEFAULT_AHEAD_SECONDS = 60
const DEFAULT_LAG_SECONDS = 300
const DEFAULT_ASK_MS = 2_000

/** Blocks held for missing parents per signer; beyond this a new one of theirs is refused (a flood, or a parent that never comes). */
export const MAX_ORPHANS_PER_SENDER = 256
/** On whose behalf a block a caller waits for on nobody's is asked for (Gaps' share per signer). */
const NOBODY = ''
/** Blocks held for missing parents in all, while no members are known (no charter yet, none named by the run). */
const MAX_ORPHANS = 10_000

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
  // Read before anything is written: a damaged note refuses the open as it finds the folder.
  const noted = options.bus === undefined ? undefined : await readCopyMade(options.dir)
  const { file, checked } = await BlockFile.open(options.dir, REPLICA, options.difficulty ?? DEFAULT_DIFFICULTY, logger, { readOnly: options.bus === undefined, sameDifficulty: options.difficulty !== undefined })
  const clock = options.clock ?? ((): number => Math.floor(Date.now() / 1000))
  // A federation's copy with no charter yet judges one by when the copy was made (copy-made.ts).
  const madeAt = options.bus !== undefined && options.founder !== undefined && checked.blocks.length === 0
    ? noted ?? await noteCopyMade(options.dir, clock()).catch(async (err: unknown) => { await file.close(); throw err })
    : undefined
  const waiting = options.bus === undefined ? undefined : await WaitingFile.open(options.dir, logger)
  const replica = new Replica(file, checked, logger, waiting?.file, {
    waitMs: options.waitMs ?? DEFAULT_WAIT_MS,
    clock,
    madeAt,
    founder: options.founder,
    expected: options.members === undefined ? undefined : new Set(options.members),
    federation: options.federation,
    aheadSeconds: options.aheadSeconds ?? DEFAULT_AHEAD_SECONDS,
    lagSeconds: options.lagSeconds ?? DEFAULT_LAG_SECONDS
  })
  if (options.bus !== undefined && options.room !== undefined) {
    try {
      await replica.restore(waiting?.blocks ?? [])
      await replica.listen(options.bus, options.room, options.askMs ?? DEFAULT_ASK_MS, options.accounts)
    } catch (err) {
      await replica.close()
      throw err
    }
  }
  return replica
}

/** What a caller waiting on a block id learns: the block, or why it was refused. */
type Outcome = Block | ConclaveError

interface Settings { waitMs: number, clock: () => number, madeAt?: number, founder?: string, expected?: ReadonlySet<string>, federation?: string, aheadSeconds: number, lagSeconds: number }

/** A checked block waiting for its parents, who signed it, and whether its record is signed far from its time. */
interface Orphan { block: ReplicaBlock, signer: string, skewed?: true }

/** The federation and members a charter record names, or undefined when the record is no charter. */
function charterOf (record: string): { federation: string, members: ReadonlySet<string> } | undefined {
  const { record: parsed } = peekRecord(record)
  return parsed?.type === 'charter' ? { federation: parsed.federation, members: new Set(parsed.members) } : undefined
}

class Replica implements Ledger {
  readonly #file: BlockFile
  readonly #difficulty: number
  readonly #logger: Logger
  readonly #settings: Settings
  readonly #held: BlockIndex
  /** Where the blocks waiting for parents are kept across a restart; undefined when read-only. */
  readonly #waitingFile?: WaitingFile
  /** Blocks that stopped waiting since the file last heard (#tidy). */
  readonly #stopped = new Set<string>()
  /** The members of the charter this copy holds. */
  #members?: ReadonlySet<string>
  /** Its block's time: no block of the federation is dated before it. */
  #charteredAt?: number
  /** The federation whose records this copy keeps: its charter's, or the one it was opened for. */
  #federation?: string
  /** Checked blocks waiting for parents, by id; per missing parent, the ids that wait on it; per signer, how many wait; per record, the block it waits in. */
  readonly #pending = new Map<string, Orphan>()
  readonly #orphans = new Map<string, Set<string>>()
  readonly #waiting = new Map<string, number>()
  readonly #waitingRecords = new Map<string, string>()
  /** Callers waiting for a block id to be ingested or refused, and on whose behalf (GetOptions.signer). */
  readonly #watchers = new Map<string, Map<(outcome?: Outcome) => void, string | undefined>>()
  /** Ingestion, one block at a time; `verify` runs on it too, so it never reads a half-written line. */
  readonly #ingest = new SerialQueue()
  /** This copy's appends, one at a time, so each new block sees the one before it. */
  readonly #appends = new SerialQueue()
  #bus?: { bus: Bus, room: string, subscription: Subscription, gaps: Gaps }
  #closed = false

  constructor (file: BlockFile, checked: Checked, logger: Logger, waitingFile: WaitingFile | undefined, settings: Settings) {
    this.#file = file
    this.#waitingFile = waitingFile
    this.#difficulty = checked.difficulty
    this.#logger = logger
    this.#settings = settings
    this.#held = new BlockIndex(checked.blocks)
    this.#federation = settings.federation
    for (const block of checked.blocks) {
      if (this.#learnCharter(block)) break
    }
  }

  async listen (bus: Bus, room: string, askMs: number, accounts?: readonly string[]): Promise<void> {
    const gaps = new Gaps({ askMs, publish: async message => bus.publish(room, message), logger: this.#logger, members: accounts }, () => this.#lacking())
    const subscription = await bus.subscribe(room, (message, delivery) => {
      // Queued, not awaited: the bus goes on delivering while blocks are checked. A want is
      // answered from what arrived before it.
      if (message.kind === 'want') { void this.#ingest.run(async () => { gaps.answer(this.#held.get(message.block), delivery?.from) }); return }
      if (message.kind !== 'block') return
      const ingested = this.#ingest.run(async () => { await this.#receive(message.block, delivery?.at); await this.#tidy() }).catch((err: unknown) => {
        this.#logger.warn('replica ingestion failed', { id: (message.block as { id?: unknown } | null)?.id, error: (err as Error).message })
      })
      // A bus that resumes after a restart resumes before a block this copy had not yet kept, or noted as waiting.
      delivery?.ack?.(ingested)
    }, { kinds: ['block', 'want'] }).catch((err: unknown) => { gaps.close(); throw err })
    this.#bus = { bus, room, subscription, gaps }
  }

  /**
   * Takes back the blocks that waited for parents when this copy last stopped (WaitingFile), in
   * the order they began to wait, before anything new arrives. Checked again, but for their time
   * only against the charter: the rest was judged as they arrived, and judged now a block the
   * other copies hold waiting could be refused here. A copy killed while it kept a block and
   * the blocks that waited for it (#keepWithDescendants) kept some of them: the others are kept
   * now, in the order that would have kept them.
   */
  async restore (blocks: readonly ReplicaBlock[]): Promise<void> {
    // A damaged copy keeps nothing (it is not extended): what waits stays in the file for the copy once mended.
    if (this.#file.damage !== undefined) return
    await this.#ingest.run(async () => {
      const kept = blocks.flatMap(b => this.#held.get(b.id) ?? [])
      // The block whose keeping was cut short: the one written right before the first of them, or the newest.
      const from = kept.length > 0 ? Math.min(...kept.map(b => b.seq)) - 1 : this.#held.blocks.length - 1
      for (const block of blocks) await this.#receive(block, undefined, true)
      // Refused as it was taken back: the blocks taken back after it that wait for it go with it, as they did on copies that
      // ran on; not for a line that is not the block its id names (damage), whose block may yet come.
      for (const block of blocks) {
        if (!this.#held.has(block.id) && !this.#pending.has(block.id) && proofFault(block.id, replicaId(block, this.#difficulty), this.#difficulty) === undefined) this.#refuseWaitingOn(block.id)
      }
      const root = this.#held.blocks[from]
      if (root !== undefined) await this.#resumeKeeping(root, blocks)
      // The file hears of every block of it that no longer waits, kept before the kill or refused now.
      for (const { id } of blocks) {
        if (!this.#pending.has(id)) this.#stopped.add(id)
      }
      // Waiting blocks whose parents are all held, which the cut-short keeping did not reach (none, unless the file was damaged).
      for (const [id, orphan] of [...this.#pending]) {
        if (this.#pending.has(id) && orphan.block.parents.every(p => this.#held.has(p))) await this.#keepWithDescendants(this.#release(id) ?? orphan)
      }
      await this.#tidy()
    })
  }

  /**
   * Keeps the blocks of `waited` (the file's, in the order they began to wait) that
   * #keepWithDescendants(root) would have, in its order (breadth first, each once all its
   * parents are held), going through those it kept before it was cut short.
   */
  async #resumeKeeping (root: Block, waited: readonly ReplicaBlock[]): Promise<void> {
    const children = new Map<string, ReplicaBlock[]>()
    for (const block of waited) {
      for (const parent of block.parents) {
        const siblings = children.get(parent)
        if (siblings === undefined) children.set(parent, [block])
        else siblings.push(block)
      }
    }
    // Held as the keeping went: before it began (up to the root), or kept by it since.
    const done = new Set<string>()
    const heldThen = (id: string): boolean => done.has(id) || (this.#held.get(id)?.seq ?? Infinity) <= root.seq
    const queued = new Set<string>([root.id])
    const ready: Array<{ id: string, orphan?: Orphan }> = [{ id: root.id }]
    for (let next = ready.shift(); next !== undefined; next = ready.shift()) {
      if (next.orphan !== undefined && !await this.#keep(next.orphan)) continue
      done.add(next.id)
      for (const child of children.get(next.id) ?? []) {
        if (queued.has(child.id) || !child.parents.every(heldThen)) continue
        queued.add(child.id)
        const orphan = this.#held.has(child.id) ? undefined : this.#release(child.id)
        if (this.#held.has(child.id) || orphan !== undefined) ready.push({ id: child.id, orphan })
      }
    }
  }

  async append (jwt: string, options: AppendOptions = {}): Promise<Block> {
    options.signal?.throwIfAborted()
    const listening = this.#bus
    if (listening === undefined) throw new ConfigError('this replica was opened without a bus (read-only); it cannot append')
    return this.#appends.run(async () => {
      options.signal?.throwIfAborted()
      await this.#ingest.run(async () => {}) // what has arrived so far counts: its records, its tips
      if (this.#closed) throw new BackendUnavailableError('the replica is closed')
      this.#file.assertExtendable()
      if (this.#held.anchors(jwt)) throw new DuplicateRecordError('this signed record is already anchored')
      // Approving a block dated ahead would date mine over ANCHOR_SKEW_SECONDS after my record's signing, and the federation would refuse it.
      const signedAt = peekRecord(jwt).issuedAt
      const { parents, time } = this.#held.next(this.#settings.clock(), options.after, signedAt === null ? undefined : signedAt + ANCHOR_SKEW_SECONDS)
      await verifyRecord(jwt, { now: time })
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
      if (outcome === undefined) throw new BackendUnavailableError(`block ${id} did not come back through bus room ${listening.room} within ${this.#settings.waitMs} ms`)
      if (outcome instanceof ConclaveError) throw outcome
      return outcome
    })
  }

  /**
   * The block, once ingestion queued so far is done; an unknown block is waited for up to
   * `waitMs` (unless `wait` is false), since a record is announced right after its block and
   * may be asked for first.
   */
  async get (id: string, options: GetOptions = {}): Promise<Block | undefined> {
    options.signal?.throwIfAborted()
    await this.#ingest.run(async () => {})
    const known = this.#held.get(id)
    if (known !== undefined || options.wait === false || this.#bus === undefined || this.#closed) return known
    // Kept under another block, it is not in this one; waiting under another, that one may be a re-wrap.
    if (options.record !== undefined && this.#held.anchors(options.record)) return undefined
    const outcome = await this.#watch(id, options.signal, options.signer).arrival
    return outcome instanceof ConclaveError ? undefined : outcome
  }

  /** Over the blocks this copy holds (all of a held block's ancestors are held). */
  async descends (id: string, ancestor: string): Promise<boolean> {
    return this.#held.descends(id, ancestor)
  }

  /** Blocks in this copy's ingest order, after what has arrived so far is ingested. */
  async * blocks (options: BlocksOptions = {}): AsyncIterable<Block> {
    await this.#ingest.run(async () => {})
    yield * this.#held.snapshot(options.signal, options.from)
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
    this.#bus?.gaps.close()
    for (const id of [...this.#watchers.keys()]) this.#settle(id, new BackendUnavailableError('the replica closed before the block arrived'))
    await this.#appends.run(async () => {})
    await this.#ingest.run(async () => {})
    await this.#file.close()
  }

  /**
   * Checks a block from the bus, cheapest checks first; keeps it, holds it for its parents, or
   * refuses it. `at`: when the room took it, where the bus says (see #timeFault). `restored`: it
   * waited when this copy last stopped (restore).
   */
  async #receive (raw: unknown, at?: number, restored = false): Promise<void> {
    if (this.#closed) return
    const parsed = ReplicaBlock.safeParse(raw)
    if (!parsed.success) { this.#refuse(undefined, new InvalidRecordError(`not a replica block: ${parsed.error.issues[0]?.message ?? 'invalid'}`)); return }
    const b = parsed.data
    if (this.#held.has(b.id) || this.#pending.has(b.id)) return
    const fault = proofFault(b.id, replicaId(b, this.#difficulty), this.#difficulty)
    // Not the block its id names, so nobody waiting on that id hears of it.
    if (fault !== undefined) { this.#refuse(b.id, new LedgerCorruptError(`block ${b.id}: ${fault} (difficulty ${this.#difficulty})`), false); return }
    if (new Set(b.parents).size !== b.parents.length) { this.#refuse(b.id, new LedgerCorruptError(`block ${b.id} names the same parent twice`)); return }
    // Who the record says signed it, unverified: enough to refuse what verifying would refuse too.
    const { issuer, record, issuedAt } = peekRecord(b.record)
    const early = restored ? this.#beforeCharter(b.time) : undefined
    const implausible = restored ? (early === undefined ? undefined : { fault: early, ahead: false }) : this.#timeFault(b, issuer, at)
    // Dated ahead is "not yet": whoever waits for the block, and the blocks waiting for it, go on
    // waiting, and it is asked for again (gaps.ts). Dated back is for good.
    if (implausible !== undefined) { this.#refuse(b.id, new ImplausibleBlockTimeError(`block ${b.id} is dated ${implausible.fault}`), !implausible.ahead); return }
    if (issuer === null) { this.#refuse(b.id, new InvalidRecordError(`block ${b.id} does not carry a signed record`)); return }
    const foreign = this.#foreign(b.id, record)
    if (foreign !== undefined) { this.#refuse(b.id, foreign); return }
    const missing = b.parents.filter(p => !this.#held.has(p))
    // Before the charter, a block waiting for parents may be a member's that came early (a
    // bus may reorder): its signer is judged when it is kept, once the charter is known.
    const judged = this.#members !== undefined || missing.length === 0
    const outsider = judged ? this.#outsider(b.id, issuer) : this.#unexpected(b.id, issuer)
    if (outsider !== undefined) { this.#refuse(b.id, outsider); return }
    // A federation's copy has one root, its charter, so every block it keeps descends from it.
    if (b.parents.length === 0 && this.#settings.founder !== undefined && (this.#charteredAt !== undefined || record?.type !== 'charter')) {
      this.#refuse(b.id, new LedgerCorruptError(`block ${b.id} approves no block: only the federation's charter may, as this copy's first`))
      return
    }
    // Nor one naming other members than the run does (an earlier run's charter under this id, replayed first).
    const expected = this.#settings.expected
    if (record?.type === 'charter' && expected !== undefined && (new Set(record.members).size !== expected.size || record.members.some(m => !expected.has(m)))) {
      this.#refuse(b.id, new WrongFederationError(`block ${b.id} carries a charter naming other members than this copy's run: ${record.members.join(', ')}`))
      return
    }
    // Nor one from well before this copy was made: an earlier run's naming the same members
    // (copy-made.ts). As far back as the copy takes any block (its lag bound): the founder's
    // clock may be behind this copy's.
    const { madeAt, lagSeconds } = this.#settings
    const chartered = record?.type === 'charter' ? Math.min(b.time, issuedAt ?? b.time) : undefined
    if (chartered !== undefined && madeAt !== undefined && chartered < madeAt - lagSeconds) {
      this.#refuse(b.id, new WrongFederationError(`block ${b.id} carries a charter signed or dated ${madeAt - chartered} s before this copy was made: an earlier run's`))
      return
    }
    if (this.#held.anchors(b.record)) { this.#refuse(b.id, new DuplicateRecordError(`block ${b.id} anchors a record already anchored under another block`)); return }
    // One waiting block per record: whoever re-wraps a record it saw go by takes none of its signer's share.
    const twin = missing.length > 0 ? this.#waitingRecords.get(b.record) : undefined
    if (twin !== undefined) { this.#refuse(b.id, new DuplicateRecordError(`block ${b.id} anchors a record already waiting for its parents under block ${twin}`)); return }
    // The federation refuses a record signed far from its block's time (state.ts), so such a block
    // may not wait for parents on its own: re-dated records of a member's from an earlier run under
    // this id filled its share. Its signer's next block, waiting and signed in time, may have it
    // wait (an honest block dated behind a parent dated ahead, then approved by its own next one);
    // another member's block may not, or that member could fill the signer's share with them.
    // Not for good: with its parents held it is kept, as before.
    const skewed = missing.length > 0 && issuedAt !== null && Math.abs(issuedAt - b.time) > ANCHOR_SKEW_SECONDS
    if (skewed && !restored && !this.#awaitedByOwn(b.id, issuer)) {
      this.#refuse(b.id, new RecordTimeMismatchError(`block ${b.id} is dated ${b.time}, ${b.time - (issuedAt ?? 0)} s from its record's signing, and may not wait for parents unless its signer's next block waits for it`), false)
      return
    }
    const full = missing.length > 0 ? this.#orphanLimit(issuer) : undefined
    if (full !== undefined) { this.#refuse(b.id, new OrphanLimitError(`block ${b.id} waits for parents while ${full}`)); return }
    try {
      await verifyRecord(b.record, { now: b.time, members: judged ? this.#signers() : undefined })
    } catch (err) {
      this.#refuse(b.id, err instanceof ConclaveError ? err : new LedgerCorruptError(`block ${b.id}: its record does not verify`, { cause: err }))
      return
    }
    // Taken back with its parents held, it waits to be kept in its place (restore).
    if (missing.length === 0 && !restored) return this.#keepWithDescendants({ block: b, signer: issuer })
    this.#pending.set(b.id, { block: b, signer: issuer, ...(skewed ? { skewed: true } : {}) })
    this.#waiting.set(issuer, (this.#waiting.get(issuer) ?? 0) + 1)
    this.#waitingRecords.set(b.record, b.id)
    for (const parent of missing) {
      const children = this.#orphans.get(parent)
      if (children === undefined) this.#orphans.set(parent, new Set([b.id]))
      else children.add(b.id)
    }
    if (!restored) await this.#waitingFile?.add(b)
  }

  /** Tells the waiting blocks' file which blocks stopped waiting (kept or refused). */
  async #tidy (): Promise<void> {
    const stopped = [...this.#stopped]
    this.#stopped.clear()
    await this.#waitingFile?.settle(stopped, this.#pending.size, () => [...this.#pending.values()].map(orphan => orphan.block))
  }

  /**
   * What this copy asks the room for: the parents its waiting blocks lack that are not waiting
   * themselves, with who signed the blocks that wait; and the blocks a caller waits for (`get`:
   * an announced record's block, perhaps refused as dated ahead when it came), on behalf of the
   * signer each is waited for, those waited for on nobody's behalf sharing one signer's asks.
   */
  * #lacking (): Iterable<Gap> {
    const missing = (id: string): boolean => !this.#held.has(id) && !this.#pending.has(id)
    for (const [parent, children] of this.#orphans) {
      if (!missing(parent)) continue
      const signers = new Set([...children].flatMap(child => this.#pending.get(child)?.signer ?? []))
      if (signers.size > 0) yield { id: parent, signers }
    }
    for (const [id, waiting] of this.#watchers) {
      if (missing(id) && !this.#orphans.has(id)) yield { id, signers: new Set([...waiting.values()].map(signer => signer ?? NOBODY)) }
    }
  }

  /** Who may sign the blocks this copy keeps: the charter's members, or its founder before it; undefined: anyone. */
  #signers (): ReadonlySet<string> | undefined {
    return this.#members ?? (this.#settings.founder === undefined ? undefined : new Set([this.#settings.founder]))
  }

  /** Why block `id`, signed by `signer`, may not be kept now, or undefined when it may. */
  #outsider (id: string, signer: string): NotMemberError | undefined {
    const signers = this.#signers()
    if (signers === undefined || signers.has(signer)) return undefined
    return new NotMemberError(`block ${id} is signed by ${signer}, who is not ${this.#members === undefined ? 'the founder' : 'a member'}`)
  }

  /** Why block `id`, waiting for parents before the charter, may not wait: its signer is not one the run names. */
  #unexpected (id: string, signer: string): NotMemberError | undefined {
    const { expected, founder } = this.#settings
    if (expected === undefined || expected.has(signer) || signer === founder) return undefined
    return new NotMemberError(`block ${id} waits for parents before the charter, signed by ${signer}, whom this copy's run does not name`)
  }

  /**
   * Why a block's time is implausible to this copy on arrival, or undefined. Its parents' times
   * are checked when it is kept. Dated ahead is judged by when the room took the block, where
   * the bus says (`at`), so every copy reading the room takes it at the same place in its
   * order, whatever its clock; else by this copy's clock. The lag bound is measured from this
   * copy's newest block, so another copy may have kept a block this one finds too old (its
   * newest block older, after a quiet spell, or without a block dated ahead that this one
   * keeps): it is waived for a block that another signer's waiting block descends from (that
   * signer's copy kept it within its own bound), however far back, or the copies would split
   * for good. Two colluding members can so have a block dated far back kept: README.
   */
  #timeFault (b: ReplicaBlock, issuer: string | null, at: number | undefined): { fault: string, ahead: boolean } | undefined {
    const { clock, aheadSeconds, lagSeconds } = this.#settings
    const now = at ?? clock()
    if (b.time > now + aheadSeconds) return { fault: `${b.time - now} s ahead of ${at === undefined ? 'this copy\'s clock' : 'when the room took it'}`, ahead: true }
    const early = this.#beforeCharter(b.time)
    if (early !== undefined) return { fault: early, ahead: false }
    const latest = this.#held.latest
    if (latest === undefined || b.time >= latest - lagSeconds) return undefined
    return this.#awaitedByAnother(b.id, issuer) ? undefined : { fault: `${latest - b.time} s before the newest block this copy holds`, ahead: false }
  }

  /** How long before the charter `time` lies, as a fault, or undefined: every block descends from the charter and is dated no earlier than what it approves. */
  #beforeCharter (time: number): string | undefined {
    return this.#charteredAt !== undefined && time < this.#charteredAt ? `${this.#charteredAt - time} s before the charter` : undefined
  }

  /** Whether a waiting block of `signer`'s, its record signed in time, approves block `id`. */
  #awaitedByOwn (id: string, signer: string): boolean {
    for (const child of this.#orphans.get(id) ?? []) {
      const waiting = this.#pending.get(child)
      if (waiting !== undefined && waiting.signer === signer && waiting.skewed !== true) return true
    }
    return false
  }

  /** Whether a waiting block signed by someone other than `signer` descends from block `id`, through waiting blocks. */
  #awaitedByAnother (id: string, signer: string | null): boolean {
    const seen = new Set<string>()
    const next = [id]
    for (let at = next.pop(); at !== undefined; at = next.pop()) {
      for (const child of this.#orphans.get(at) ?? []) {
        const waiting = this.#pending.get(child)
        if (waiting === undefined || seen.has(child)) continue
        if (waiting.signer !== signer) return true
        seen.add(child)
        next.push(child)
      }
    }
    return false
  }

  /** Why `signer` may not have one more block wait for its parents, or undefined. */
  #orphanLimit (signer: string): string | undefined {
    if ((this.#waiting.get(signer) ?? 0) >= MAX_ORPHANS_PER_SENDER) return `${MAX_ORPHANS_PER_SENDER} blocks of its signer already do`
    if (this.#members === undefined && this.#settings.expected === undefined && signer !== this.#settings.founder && this.#pending.size >= MAX_ORPHANS) return `${MAX_ORPHANS} blocks already do`
    return undefined
  }

  /** Keeps `first`, then every held block that it (or one kept after it) completes, in arrival order. */
  async #keepWithDescendants (first: Orphan): Promise<void> {
    const ready = [first]
    for (let next = ready.shift(); next !== undefined; next = ready.shift()) {
      // Refusing a block refuses the blocks held for it too.
      if (!await this.#keep(next)) continue
      for (const child of this.#orphans.get(next.block.id) ?? []) {
        const orphan = this.#pending.get(child)
        if (orphan === undefined || !orphan.block.parents.every(p => this.#held.has(p))) continue
        this.#release(child)
        ready.push(orphan)
      }
      this.#orphans.delete(next.block.id)
    }
  }

  /** Writes a checked block whose parents are held; false when it is refused. */
  async #keep ({ block: b, signer }: Orphan): Promise<boolean> {
    const outsider = this.#outsider(b.id, signer)
    if (outsider !== undefined) return this.#refuse(b.id, outsider)
    const approved = Math.max(...b.parents.map(p => this.#held.get(p)?.time ?? 0))
    if (b.time < approved) return this.#refuse(b.id, new ImplausibleBlockTimeError(`block ${b.id} is dated ${approved - b.time} s before a block it approves`))
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
    // A re-wrap of its record that came first and waits for made-up parents would take its signer's share for good.
    const twin = this.#waitingRecords.get(block.record)
    if (twin !== undefined && this.#release(twin) !== undefined) this.#refuse(twin, new DuplicateRecordError(`block ${twin} anchors a record now anchored under block ${block.id}`))
    if (this.#members === undefined && this.#learnCharter(block)) this.#refuseOutsiders()
    return true
  }

  /** Takes the federation, members and start from a charter's block; false when the block holds no charter. */
  #learnCharter (block: Block): boolean {
    const charter = charterOf(block.record)
    if (charter === undefined) return false
    this.#members = charter.members
    this.#charteredAt = block.time
    this.#federation = charter.federation
    return true
  }

  /** Refuses the waiting blocks of anyone the charter does not name, of another federation, or dated before it, once it is kept. */
  #refuseOutsiders (): void {
    for (const { block, signer } of [...this.#pending.values()]) {
      const early = this.#beforeCharter(block.time)
      const reason = this.#outsider(block.id, signer) ?? this.#foreign(block.id, peekRecord(block.record).record) ??
        (early === undefined ? undefined : new ImplausibleBlockTimeError(`block ${block.id} is dated ${early}`))
      if (reason !== undefined && this.#release(block.id) !== undefined) this.#refuse(block.id, reason)
    }
  }

  /** Why block `id`, carrying `record`, belongs to another federation than this copy's, or undefined. */
  #foreign (id: string, record: Record | null): WrongFederationError | undefined {
    if (this.#federation === undefined || record?.federation === this.#federation) return undefined
    return new WrongFederationError(`block ${id} carries ${record === null ? 'no valid record' : `a record of federation ${record.federation}`}, not of ${this.#federation}`)
  }

  /** Takes a block off the orphans, and off its signer's share. */
  #release (id: string): Orphan | undefined {
    const orphan = this.#pending.get(id)
    if (orphan === undefined) return undefined
    this.#pending.delete(id)
    this.#stopped.add(id)
    this.#waitingRecords.delete(orphan.block.record)
    // Off the lists of its other missing parents too: a block refused through one of them would
    // stay on the others' for good. A caller walking one of them skips it (a Set's walk does).
    for (const parent of orphan.block.parents) {
      const children = this.#orphans.get(parent)
      if (children === undefined) continue
      children.delete(id)
      if (children.size === 0) this.#orphans.delete(parent)
    }
    const left = (this.#waiting.get(orphan.signer) ?? 1) - 1
    if (left === 0) this.#waiting.delete(orphan.signer)
    else this.#waiting.set(orphan.signer, left)
    return orphan
  }

  /**
   * Logs a refusal and tells whoever waits on the block; the blocks held for it are refused in
   * turn (they can never be kept). Without `tellWaiting` (a block dated ahead, which may yet be
   * kept; one that is not the block its id names) only the log hears of it.
   */
  #refuse (id: string | undefined, error: ConclaveError, tellWaiting = true): false {
    this.#logger.warn('replica refused a block', { id, error: error.name, reason: error.message })
    if (id === undefined || !tellWaiting) return false
    this.#settle(id, error)
    this.#refuseWaitingOn(id)
    return false
  }

  /** Refuses the blocks waiting for refused block `id`, and theirs in turn. */
  #refuseWaitingOn (id: string): void {
    const refused = [id]
    for (let parent = refused.shift(); parent !== undefined; parent = refused.shift()) {
      for (const child of this.#orphans.get(parent) ?? []) {
        if (this.#release(child) === undefined) continue
        const reason = new LedgerCorruptError(`block ${child} approves block ${parent}, which this replica refused`)
        this.#logger.warn('replica refused a block', { id: child, error: reason.name, reason: reason.message })
        this.#settle(child, reason)
        refused.push(child)
      }
      this.#orphans.delete(parent)
    }
  }

  /** Resolves with the block once `id` is ingested, the error if it is refused, or undefined after `waitMs`. */
  #watch (id: string, signal?: AbortSignal, signer?: string): { arrival: Promise<Outcome | undefined>, cancel: () => void } {
    const { promise, resolve, reject } = Promise.withResolvers<Outcome | undefined>()
    const waiting = this.#watchers.get(id) ?? new Map()
    this.#watchers.set(id, waiting)
    const stop = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', abort)
      waiting.delete(settle)
      if (waiting.size === 0 && this.#watchers.get(id) === waiting) this.#watchers.delete(id)
    }
    const settle = (outcome?: Outcome): void => { stop(); resolve(outcome) }
    const abort = (): void => { stop(); reject(signal?.reason) }
    const timer = setTimeout(settle, this.#settings.waitMs)
    signal?.addEventListener('abort', abort, { once: true })
    waiting.set(settle, signer)
    if (signal?.aborted === true) abort()
    return { arrival: promise, cancel: () => { settle() } }
  }

  #settle (id: string, outcome: Outcome): void {
    for (const settle of [...this.#watchers.get(id)?.keys() ?? []]) settle(outcome)
  }
}
