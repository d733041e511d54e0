import { BackendUnavailableError, DuplicateRecordError } from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import type { AbortOptions } from '../core/options.ts'
import { verifyRecord } from '../identity/index.ts'
import { BlockFile, BlockIndex, hashId, mine, type BlockFormat, type Checked } from './dag.ts'
import type { AppendOptions, Block, BlocksOptions, Ledger, LedgerVerification } from './index.ts'

// The tangle's own API since before dag.ts: its callers and tests import them from here.
export { leadingZeroBits, tipSelection } from './dag.ts'

/**
 * The embedded tangle: a DAG of signed records in `${dir}/tangle.jsonl`. Line 1 is a
 * header, `{"tangle":1,"difficulty":D}`, that fixes the proof-of-work difficulty; every
 * further line is one block as compact JSON in the key order `id, seq, parents, record,
 * time, pow`, block `seq` on line `seq + 2`.
 *
 * - Block id: sha-256 hex of the JSON array `[seq, parents, record, time, pow, difficulty]`,
 *   so changing a block, or the header's difficulty, changes its id.
 * - Each line must be its block's canonical JSON byte for byte (UTF-8, strict schema), so
 *   a flip that leaves the values intact (a key's case, an escape) is caught as well.
 * - Tip selection (`tipSelection`): deterministic. A new block approves the two oldest
 *   tips (blocks nobody approves yet, lowest seq first); when only one tip exists it
 *   approves that tip and the newest other block; the genesis block approves nothing and
 *   block 1 approves the genesis. A block never names the same parent twice. With one
 *   writer there is one tip, so every block descends from all earlier ones.
 * - Time: the tangle's clock when the block is appended, or its newest parent's time if that
 *   is later (a clock stepped back); a block is never dated before a block it approves.
 * - Proof of work: the id must have `difficulty` leading zero bits (rate-limits spam;
 *   integrity comes from the hashes and signatures).
 * - Appends are serialised in-process (a promise chain), so many participants can share
 *   one tangle; each line is fdatasync'ed before `append` resolves, the lines appended while
 *   a sync runs sharing the next one (a block is held, and may be approved, once written:
 *   a block is never durable before the blocks it approves, which come before it in the
 *   file). A failed write is truncated away; a failed sync leaves the file damaged. One
 *   process writes a file at a time.
 *
 * A last line with no newline is a write a kill or power cut stopped: opened to be written,
 * the file drops it when all before it checks (dag.ts `dropUnfinished`); read-only, it is damage.
 * Damage is reported by `verify()`, never by `openTangle`: a damaged file still opens,
 * `verify()` names the first bad block (its seq, and its id when the line still shows
 * one; header damage is reported as seq 0 without an id), `blocks()` yields only the
 * good prefix, and `append` refuses with LedgerCorruptError. `verify()` re-reads and
 * re-checks the whole file each time, so damage done after opening is found too.
 */
export interface TangleOptions {
  /** Folder that holds `tangle.jsonl`; created when missing (unless `readOnly`). */
  dir: string
  /** Leading zero bits required of block ids, for a new file; an existing file keeps its own. @default 8 */
  difficulty?: number
  logger?: Logger
  /** Unix seconds. @default the system clock */
  clock?: () => number
  /** Read an existing tangle only (an audit): nothing is created or written, `append` throws ConfigError. @default false */
  readOnly?: boolean
}

const DEFAULT_DIFFICULTY = 8

/** `tangle.jsonl`: the id covers `seq`, so the file has one writer and one order. */
const TANGLE: BlockFormat = { name: 'tangle', id: (b, difficulty) => hashId([b.seq, b.parents, b.record, b.time], b.pow, difficulty) }

export async function openTangle (options: TangleOptions): Promise<Ledger> {
  const logger = options.logger ?? silentLogger
  const { file, checked } = await BlockFile.open(options.dir, TANGLE, options.difficulty ?? DEFAULT_DIFFICULTY, logger, { readOnly: options.readOnly })
  return new Tangle(file, checked, options.clock)
}

class Tangle implements Ledger {
  readonly #file: BlockFile
  readonly #difficulty: number
  readonly #clock: () => number
  readonly #held: BlockIndex
  #lock: Promise<unknown> = Promise.resolve()
  #closed = false

  constructor (file: BlockFile, checked: Checked, clock = (): number => Math.floor(Date.now() / 1000)) {
    this.#file = file
    this.#difficulty = checked.difficulty
    this.#clock = clock
    this.#held = new BlockIndex(checked.blocks)
  }

  async append (jwt: string, options: AppendOptions = {}): Promise<Block> {
    options.signal?.throwIfAborted()
    const block = await this.#exclusive(async () => {
      options.signal?.throwIfAborted()
      if (this.#closed) throw new BackendUnavailableError('the tangle is closed')
      this.#file.assertExtendable()
      if (this.#held.anchors(jwt)) throw new DuplicateRecordError('this signed record is already anchored')
      const { parents, time } = this.#held.next(this.#clock(), options.after)
      await verifyRecord(jwt, { now: time })
      const seq = this.#held.blocks.length
      const { id, pow } = await mine([seq, parents, jwt, time], this.#difficulty, options.signal)
      const block: Block = { id, seq, parents, record: jwt, time, pow }
      await this.#file.write(block)
      this.#held.add(block)
      return block
    })
    // Outside the lock: the appends that come meanwhile are mined and written, and share the next sync.
    await this.#file.durable()
    return block
  }

  async get (id: string): Promise<Block | undefined> {
    return this.#held.get(id)
  }

  async descends (id: string, ancestor: string): Promise<boolean> {
    return this.#held.descends(id, ancestor)
  }

  async * blocks (options: BlocksOptions = {}): AsyncIterable<Block> {
    yield * this.#held.snapshot(options.signal, options.from)
  }

  /** Re-reads `tangle.jsonl` and re-checks every line; also checks it still holds what this ledger appended. */
  async verify (options: AbortOptions = {}): Promise<LedgerVerification> {
    options.signal?.throwIfAborted()
    return this.#exclusive(async () => this.#file.verify(this.#held.blocks, options.signal))
  }

  async close (): Promise<void> {
    await this.#lock
    if (this.#closed) return
    this.#closed = true
    await this.#file.close()
  }

  /** Runs `task` after every earlier append and verify has settled. */
  async #exclusive<T> (task: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(task)
    this.#lock = run.catch(() => undefined)
    return run
  }
}
