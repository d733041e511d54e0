import { createHash } from 'node:crypto'
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises'
import { readIfExists } from '../core/files.ts'
import { join } from 'node:path'
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import { BackendUnavailableError, ConclaveError, DuplicateRecordError, LedgerCorruptError } from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import type { AbortOptions } from '../core/options.ts'
import { verifyRecord } from '../identity/index.ts'
import { Block, type Ledger, type LedgerVerification } from './index.ts'

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
 *   block 1 approves the genesis. A block never names the same parent twice.
 * - Proof of work: the id must have `difficulty` leading zero bits (rate-limits spam;
 *   integrity comes from the hashes and signatures).
 * - Appends are serialised in-process (a promise chain), so many participants can share
 *   one tangle; each line is appended and fdatasync'ed before `append` resolves, and a
 *   failed write is truncated away. One process writes a file at a time.
 *
 * Damage is reported by `verify()`, never by `openTangle`: a damaged file still opens,
 * `verify()` names the first bad block (its seq, and its id when the line still shows
 * one; header damage is reported as seq 0 without an id), `blocks()` yields only the
 * good prefix, and `append` refuses with LedgerCorruptError. `verify()` re-reads and
 * re-checks the whole file each time, so damage done after opening is found too.
 */
export interface TangleOptions {
  /** Folder that holds `tangle.jsonl`; created when missing. */
  dir: string
  /** Leading zero bits required of block ids, for a new file; an existing file keeps its own. @default 8 */
  difficulty?: number
  logger?: Logger
  /** Unix seconds. @default the system clock */
  clock?: () => number
}

const FILE = 'tangle.jsonl'
const DEFAULT_DIFFICULTY = 8

type Failure = { seq: number, id?: string, error: ConclaveError }
interface Checked { difficulty: number, blocks: Block[], failure?: Failure }

export async function openTangle (options: TangleOptions): Promise<Ledger> {
  const logger = options.logger ?? silentLogger
  await mkdir(options.dir, { recursive: true })
  const path = join(options.dir, FILE)
  const existing = await readIfExists(path)
  const file = await open(path, 'a')
  try {
    if (existing === undefined || existing.length === 0) {
      const difficulty = options.difficulty ?? DEFAULT_DIFFICULTY
      const header = Buffer.from(headerLine(difficulty))
      await file.appendFile(header)
      await file.datasync()
      await syncDir(options.dir)
      return new Tangle(path, file, { difficulty, blocks: [] }, header.length, logger, options.clock)
    }
    const checked = await checkTangle(existing)
    if (checked.failure !== undefined) logger.warn('tangle does not verify', { seq: checked.failure.seq, id: checked.failure.id, error: checked.failure.error.name })
    return new Tangle(path, file, checked, existing.length, logger, options.clock)
  } catch (err) {
    await file.close()
    throw err
  }
}

class Tangle implements Ledger {
  readonly #path: string
  readonly #file: FileHandle
  readonly #difficulty: number
  readonly #logger: Logger
  readonly #clock: () => number
  readonly #blocks: Block[] = []
  readonly #byId = new Map<string, Block>()
  readonly #records = new Set<string>()
  readonly #tips = new Set<string>()
  #failure?: Failure
  #size: number
  #lock: Promise<unknown> = Promise.resolve()
  #closed = false

  constructor (path: string, file: FileHandle, checked: Checked, size: number, logger: Logger, clock = (): number => Math.floor(Date.now() / 1000)) {
    this.#path = path
    this.#file = file
    this.#difficulty = checked.difficulty
    this.#failure = checked.failure
    this.#size = size
    this.#logger = logger
    this.#clock = clock
    for (const block of checked.blocks) this.#add(block)
  }

  async append (jwt: string, options: AbortOptions = {}): Promise<Block> {
    options.signal?.throwIfAborted()
    return this.#exclusive(async () => {
      options.signal?.throwIfAborted()
      if (this.#closed) throw new BackendUnavailableError('the tangle is closed')
      if (this.#failure !== undefined) throw new LedgerCorruptError(`the tangle is damaged at block ${this.#failure.seq}; it cannot be extended`, { cause: this.#failure.error })
      if (this.#records.has(jwt)) throw new DuplicateRecordError('this signed record is already anchored')
      const time = this.#clock()
      await verifyRecord(jwt, { now: time })
      const seq = this.#blocks.length
      const parents = tipSelection(this.#blocks, this.#tips)
      const { id, pow } = await mine(seq, parents, jwt, time, this.#difficulty, options.signal)
      const block: Block = { id, seq, parents, record: jwt, time, pow }
      await this.#write(seq, blockLine(block))
      this.#add(block)
      return block
    })
  }

  async get (id: string): Promise<Block | undefined> {
    return this.#byId.get(id)
  }

  async * blocks (options: AbortOptions = {}): AsyncIterable<Block> {
    for (const block of this.#blocks.slice()) {
      options.signal?.throwIfAborted()
      yield block
    }
  }

  /** Re-reads `tangle.jsonl` and re-checks every line; also checks it still holds what this ledger appended. */
  async verify (options: AbortOptions = {}): Promise<LedgerVerification> {
    options.signal?.throwIfAborted()
    return this.#exclusive(async () => {
      const checked = await checkTangle(await readFile(this.#path), options.signal)
      const failure = checked.failure ?? divergence(this.#blocks, checked.blocks)
      if (failure === undefined) return { ok: true, blocks: checked.blocks.length }
      this.#failure ??= failure
      return { ok: false, blocks: failure.seq, failure }
    })
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

  async #write (seq: number, line: string): Promise<void> {
    const bytes = Buffer.from(line)
    try {
      await this.#file.appendFile(bytes)
      await this.#file.datasync()
    } catch (err) {
      // Take a partial line back off, or refuse further appends if even that fails.
      await this.#file.truncate(this.#size).catch((truncateError: unknown) => {
        this.#failure = { seq, error: new LedgerCorruptError(`a failed write may have left part of block ${seq} in the file`, { cause: truncateError }) }
      })
      this.#logger.warn('tangle append failed', { seq, error: (err as Error).message })
      throw err
    }
    this.#size += bytes.length
  }

  #add (block: Block): void {
    this.#blocks.push(block)
    this.#byId.set(block.id, block)
    this.#records.add(block.record)
    for (const parent of block.parents) this.#tips.delete(parent)
    this.#tips.add(block.id)
  }
}

/**
 * Deterministic tip selection over `blocks` in seq order, given the current `tips`
 * (blocks nobody approves yet): the two oldest tips; when there is only one tip, that tip
 * and the newest other block; at genesis, none. Never the same block twice.
 */
export function tipSelection (blocks: readonly Block[], tips: ReadonlySet<string>): string[] {
  const parents: string[] = []
  for (const block of blocks) {
    if (parents.length === 2) break
    if (tips.has(block.id)) parents.push(block.id)
  }
  if (parents.length === 1) {
    const other = blocks.findLast(b => b.id !== parents[0])
    if (other !== undefined) parents.push(other.id)
  }
  return parents
}

/** Leading zero bits of a hex string (the proof-of-work measure). */
export function leadingZeroBits (hex: string): number {
  let bits = 0
  for (const c of hex) {
    const nibble = parseInt(c, 16)
    if (nibble === 0) { bits += 4; continue }
    return bits + Math.clz32(nibble) - 28
  }
  return bits
}

function headerLine (difficulty: number): string {
  return JSON.stringify({ tangle: 1, difficulty }) + '\n'
}

function blockLine (b: Block): string {
  return JSON.stringify({ id: b.id, seq: b.seq, parents: b.parents, record: b.record, time: b.time, pow: b.pow }) + '\n'
}

/** The hash state after `[seq,parents,record,time,`: the id preimage less `pow,difficulty]`. */
function idPrefix (seq: number, parents: readonly string[], record: string, time: number): ReturnType<typeof createHash> {
  return createHash('sha256').update(JSON.stringify([seq, parents, record, time]).slice(0, -1) + ',')
}

function blockId (b: Block, difficulty: number): string {
  return idPrefix(b.seq, b.parents, b.record, b.time).update(`${b.pow},${difficulty}]`).digest('hex')
}

/** Finds the first `pow` whose id has `difficulty` leading zero bits, yielding to the event loop now and then. */
async function mine (seq: number, parents: readonly string[], record: string, time: number, difficulty: number, signal?: AbortSignal): Promise<{ id: string, pow: number }> {
  const prefix = idPrefix(seq, parents, record, time)
  for (let pow = 0; ; pow++) {
    const id = prefix.copy().update(`${pow},${difficulty}]`).digest('hex')
    if (leadingZeroBits(id) >= difficulty) return { id, pow }
    if (pow % 16_384 === 16_383) {
      await yieldToEventLoop()
      signal?.throwIfAborted()
    }
  }
}

/** Checks a whole file; stops at the first failure and returns the good prefix with it. */
async function checkTangle (bytes: Buffer, signal?: AbortSignal): Promise<Checked> {
  const { lines, complete } = splitLines(bytes)
  const blocks: Block[] = []
  const byId = new Set<string>()
  const records = new Set<string>()
  const headerText = utf8(lines[0])
  const header = parseJson(headerText) as { difficulty?: unknown } | undefined
  const difficulty = header?.difficulty
  if (typeof difficulty !== 'number' || !Number.isInteger(difficulty) || difficulty < 0 || difficulty > 64 ||
    (lines.length === 1 && !complete) || headerText + '\n' !== headerLine(difficulty)) {
    return { difficulty: 0, blocks, failure: { seq: 0, error: new LedgerCorruptError('the tangle header is damaged') } }
  }
  const fail = (seq: number, message: string, id: string | undefined, cause?: unknown): Checked => ({
    difficulty,
    blocks,
    failure: { seq, id, error: cause instanceof ConclaveError ? cause : new LedgerCorruptError(`block ${seq}${id === undefined ? '' : ` (${id})`}: ${message}`, { cause }) }
  })

  for (const [seq, bytesOfLine] of lines.slice(1).entries()) {
    signal?.throwIfAborted()
    const text = utf8(bytesOfLine)
    const json = text === undefined ? undefined : parseJson(text)
    const id = idOf(json, bytesOfLine)
    if (seq === lines.length - 2 && !complete) return fail(seq, 'the file ends inside this block (a torn write)', id)
    if (text === undefined) return fail(seq, 'not UTF-8', id)
    const parsed = Block.safeParse(json)
    if (!parsed.success) return fail(seq, 'not a well-formed block', id, parsed.error)
    const b = parsed.data
    if (blockLine(b) !== text + '\n') return fail(seq, 'not in canonical form', id)
    if (b.seq !== seq) return fail(seq, `says seq ${b.seq}`, id)
    if (blockId(b, difficulty) !== b.id) return fail(seq, 'its id is not the hash of its content', id)
    if (leadingZeroBits(b.id) < difficulty) return fail(seq, `its id lacks ${difficulty} bits of proof of work`, id)
    if (new Set(b.parents).size !== b.parents.length || b.parents.some(p => !byId.has(p))) return fail(seq, 'approves a block that does not precede it', id)
    if (records.has(b.record)) return fail(seq, 'anchors a record a second time', id)
    try {
      await verifyRecord(b.record, { now: b.time })
    } catch (err) {
      return fail(seq, 'its record does not verify', id, err)
    }
    blocks.push(b)
    byId.add(b.id)
    records.add(b.record)
  }
  return { difficulty, blocks }
}

/** Where the file on disk no longer holds the blocks this ledger appended or loaded. */
function divergence (held: readonly Block[], onDisk: readonly Block[]): Failure | undefined {
  for (let seq = 0; seq < Math.max(held.length, onDisk.length); seq++) {
    const kept = held[seq]
    const found = onDisk[seq]
    if (kept?.id === found?.id) continue
    const message = kept === undefined ? `block ${seq} on disk was not written by this ledger` : `block ${seq} (${kept.id}) is no longer in the file`
    return { seq, id: kept?.id ?? found?.id, error: new LedgerCorruptError(message) }
  }
  return undefined
}

function splitLines (bytes: Buffer): { lines: Buffer[], complete: boolean } {
  const lines: Buffer[] = []
  let start = 0
  for (let end = bytes.indexOf(0x0a); end !== -1; end = bytes.indexOf(0x0a, start)) {
    lines.push(bytes.subarray(start, end))
    start = end + 1
  }
  if (start < bytes.length) lines.push(bytes.subarray(start))
  return { lines, complete: start === bytes.length }
}

const decoder = new TextDecoder('utf-8', { fatal: true })

function utf8 (bytes: Buffer | undefined): string | undefined {
  if (bytes === undefined) return undefined
  try {
    return decoder.decode(bytes)
  } catch {
    return undefined
  }
}

/** A damaged line's block id, when its JSON still parses or its id field is still intact. */
function idOf (json: unknown, line: Buffer): string | undefined {
  const id = (json as { id?: unknown } | undefined)?.id
  if (typeof id === 'string') return id
  return /^\{"id":"([0-9a-f]{64})"/.exec(line.toString('latin1'))?.[1]
}

function parseJson (text: string | undefined): unknown {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** Makes a new file's directory entry durable (best effort where directories cannot be opened). */
async function syncDir (dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined)
  if (handle === undefined) return
  try {
    await handle.sync()
  } catch {
    // Some platforms refuse fsync on a directory; the file itself is synced.
  } finally {
    await handle.close()
  }
}
