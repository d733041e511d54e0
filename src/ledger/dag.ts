import { createHash } from 'node:crypto'
import { constants } from 'node:fs'
import { mkdir, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import { BlockNotFoundError, ConclaveError, ConfigError, EmptyLedgerError, LedgerCorruptError, StrayFileError } from '../core/errors.ts'
import { openPlainFile, readFromStart, readPlainFileWhole, syncDir } from '../core/files.ts'
import type { Logger } from '../core/logger.ts'
import { preverifyRecords, verifyRecord } from '../identity/index.ts'
import { Block, type LedgerVerification } from './index.ts'

/**
 * What the embedded tangle (tangle.ts) and the replicated tangle (replica.ts) share: proof
 * of work over a block id, tip selection, and the checked, append-only JSONL block file.
 * The two differ only in the header's name and in what the block id hashes: the tangle's
 * covers `seq`, its one writer's order; a replica's cannot, since every copy orders for itself.
 *
 * The file: line 1 is the header `{"<name>":1,"difficulty":D}`; every further line is one
 * block as compact JSON in the key order `id, seq, parents, record, time, pow`, block `seq`
 * on line `seq + 2`, each line its block's canonical JSON byte for byte (so a flip that
 * leaves the values intact, a key's case or an escape, is caught as well).
 */
export interface BlockFormat {
  /** The header's key, and the file's name in errors and logs: 'tangle' or 'replica'. */
  name: string
  /** The block's id as this format computes it from the block's content. */
  id: (block: Block, difficulty: number) => string
}

type Failure = { seq: number, id?: string, error: ConclaveError }
export interface Checked { difficulty: number, blocks: Block[], failure?: Failure }

/**
 * Deterministic tip selection over `blocks` in seq order, given the current `tips`
 * (blocks nobody approves yet): the two oldest tips; when there is only one tip, that tip
 * and the newest other block; at genesis, none. Never the same block twice.
 */
export function tipSelection (blocks: readonly Block[], tips: ReadonlySet<string>): string[] {
  return selectTips(blocks.filter(b => tips.has(b.id)), blocks)
}

/** tipSelection, given the tips in the blocks' order (only the first two are read) and the blocks (only the newest two are read). */
function selectTips (tips: Iterable<Block>, blocks: readonly Block[]): string[] {
  const parents: string[] = []
  for (const tip of tips) {
    if (parents.length === 2) break
    parents.push(tip.id)
  }
  if (parents.length === 1) {
    const other = blocks.findLast(b => b.id !== parents[0])
    if (other !== undefined) parents.push(other.id)
  }
  return parents
}

/** The blocks a ledger holds, in its order, indexed the ways appends and ingestion look them up. */
export class BlockIndex {
  readonly #blocks: Block[] = []
  readonly #byId = new Map<string, Block>()
  readonly #records = new Set<string>()
  /** Blocks nobody approves yet, in the order they were added (a Map keeps it): the oldest are found without a scan of every block. */
  readonly #tips = new Map<string, Block>()
  #latest?: number

  constructor (blocks: Iterable<Block>) {
    for (const block of blocks) this.add(block)
  }

  get blocks (): readonly Block[] { return this.#blocks }

  /** The time of the newest block held (undefined when none is). */
  get latest (): number | undefined { return this.#latest }

  add (block: Block): void {
    this.#blocks.push(block)
    this.#byId.set(block.id, block)
    this.#records.add(block.record)
    for (const parent of block.parents) this.#tips.delete(parent)
    this.#tips.set(block.id, block)
    this.#latest = Math.max(this.#latest ?? block.time, block.time)
  }

  get (id: string): Block | undefined { return this.#byId.get(id) }

  has (id: string): boolean { return this.#byId.has(id) }

  anchors (record: string): boolean { return this.#records.has(record) }

  /**
   * The parents and time of the next block: tip selection over what is held, with a tip that
   * descends from `after` in place of the second parent when neither selected one does (every
   * held block is a tip or below one); dated `now`, or its newest parent's time if later.
   * Given `notAfter`, blocks dated later are passed over (tips first, then the newest blocks
   * dated in time, and `after` itself), so the new block is dated no later than it unless `now` is.
   */
  next (now: number, after?: string, notAfter?: number): { parents: string[], time: number } {
    const inTime = (b: Block): boolean => notAfter === undefined || b.time <= notAfter
    // Filtered only where a tip is dated too late: the tips are few, the blocks many.
    const late = notAfter !== undefined && [...this.#tips.values()].some(b => !inTime(b))
    const parents = late ? selectTips([...this.#tips.values()].filter(inTime), this.#blocks.filter(inTime)) : selectTips(this.#tips.values(), this.#blocks)
    if (after !== undefined && !parents.some(p => p === after || this.descends(p, after))) {
      if (!this.has(after)) throw new BlockNotFoundError(`block ${after}, which the new block must descend from, is not held here`)
      const tip = [...this.#tips.values()].find(b => inTime(b) && (b.id === after || this.descends(b.id, after)))?.id ?? after
      if (parents.length < 2) parents.push(tip)
      else parents.splice(1, 1, tip)
    }
    return { parents, time: Math.max(now, ...parents.map(p => this.#byId.get(p)?.time ?? now)) }
  }

  /**
   * Whether `ancestor` is reachable from block `id` through parents (false when either is not
   * held). Parents come before their children, so only blocks after `ancestor` are walked.
   */
  descends (id: string, ancestor: string): boolean {
    const target = this.#byId.get(ancestor)
    const start = this.#byId.get(id)
    if (target === undefined || start === undefined) return false
    const seen = new Set<string>()
    const stack = [...start.parents]
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
      if (next === ancestor) return true
      const block = this.#byId.get(next)
      if (seen.has(next) || block === undefined || block.seq < target.seq) continue
      seen.add(next)
      stack.push(...block.parents)
    }
    return false
  }

  /** The blocks held now, in order (not those added while iterating). */
  async * snapshot (signal?: AbortSignal, from = 0): AsyncIterable<Block> {
    for (const block of this.#blocks.slice(from)) {
      signal?.throwIfAborted()
      yield block
    }
  }
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

/** A block id: sha-256 hex of the JSON array `[...head, pow, difficulty]`. */
export function hashId (head: readonly unknown[], pow: number, difficulty: number): string {
  return headHash(head).update(`${pow},${difficulty}]`).digest('hex')
}

/** Finds the first `pow` whose id has `difficulty` leading zero bits, yielding to the event loop now and then. */
export async function mine (head: readonly unknown[], difficulty: number, signal?: AbortSignal): Promise<{ id: string, pow: number }> {
  const prefix = headHash(head)
  for (let pow = 0; ; pow++) {
    const id = prefix.copy().update(`${pow},${difficulty}]`).digest('hex')
    if (leadingZeroBits(id) >= difficulty) return { id, pow }
    if (pow % 16_384 === 16_383) {
      await yieldToEventLoop()
      signal?.throwIfAborted()
    }
  }
}

/** Why `id` is not a valid id for content that hashes to `hashed`, or undefined when it is. */
export function proofFault (id: string, hashed: string, difficulty: number): string | undefined {
  if (hashed !== id) return 'its id is not the hash of its content'
  if (leadingZeroBits(id) < difficulty) return `its id lacks ${difficulty} bits of proof of work`
  return undefined
}

export function blockLine (b: Block): string {
  return JSON.stringify({ id: b.id, seq: b.seq, parents: b.parents, record: b.record, time: b.time, pow: b.pow }) + '\n'
}

/**
 * One process's block file: opened for appending, each line appended and fdatasync'ed, a
 * failed write truncated away. Damage is never an error here: `open` and `verify` report it
 * as the first failing block, so the caller can still read the good prefix.
 */
export class BlockFile {
  readonly #path: string
  /** Undefined when opened read-only. */
  readonly #file: FileHandle | undefined
  readonly #format: BlockFormat
  readonly #logger: Logger
  #size: number
  /** The datasync running (settled either way), and the one that will run after it for the lines written since it started. */
  #syncing: Promise<void> = Promise.resolve()
  #nextSync?: Promise<void>
  /** The first block written since the last sync started: what a failed sync may have lost. */
  #unsyncedFrom?: number
  /**
   * The first damage found (on opening, by `verify`, or a failed write that could not be
   * taken back off): the file must not be extended.
   */
  damage?: Failure

  private constructor (path: string, file: FileHandle | undefined, format: BlockFormat, size: number, logger: Logger, damage?: Failure) {
    this.#path = path
    this.#file = file
    this.#format = format
    this.#size = size
    this.#logger = logger
    this.damage = damage
  }

  /**
   * Opens `${dir}/${format.name}.jsonl`, creating it with `difficulty` when missing or empty; an existing file keeps its own.
   * `readOnly` reads an existing file and never creates, opens for writing or extends anything (an audit).
   */
  static async open (dir: string, format: BlockFormat, difficulty: number, logger: Logger, options: { readOnly?: boolean, sameDifficulty?: boolean } = {}): Promise<{ file: BlockFile, checked: Checked }> {
    const path = join(dir, `${format.name}.jsonl`)
    // Refused before anything is written: a copy of another difficulty is not this one's to mend.
    const refuseOther = (checked: Checked): void => {
      if (options.sameDifficulty === true && checked.failure === undefined && checked.difficulty !== difficulty) {
        throw new ConfigError(`${path} has difficulty ${checked.difficulty}, not ${difficulty}: every copy must use the same`)
      }
    }
    if (options.readOnly === true) {
      const existing = await ownFile(path, async () => readPlainFileWhole(path))
      if (existing === undefined) throw new EmptyLedgerError(`${path} does not exist: the ledger holds no block`)
      const checked = await checkFile(existing, format)
      refuseOther(checked)
      return { file: new BlockFile(path, undefined, format, existing.length, logger, checked.failure), checked }
    }
    await mkdir(dir, { recursive: true })
    // Opened, then read through the handle it appends by: a file made now reads empty.
    const handle = await ownFile(path, async () => openPlainFile(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o666)) as FileHandle
    try {
      const existing = await readFromStart(handle)
      if (existing.length === 0 || cutHeader(existing, format)) {
        if (existing.length > 0) {
          // A power cut in the file's first write: the header, synced before any block, so it held none.
          await handle.truncate(0)
          logger.warn(`${format.name}: wrote again a header cut short as the file was created`, { bytes: existing.length })
        }
        const header = Buffer.from(headerLine(format, difficulty))
        await handle.appendFile(header)
        await handle.datasync()
        await syncDir(dir)
        return { file: new BlockFile(path, handle, format, header.length, logger), checked: { difficulty, blocks: [] } }
      }
      const { checked, unfinished } = await checkUnfinished(existing, format)
      refuseOther(checked)
      if (unfinished !== undefined) {
        await handle.truncate(unfinished)
        await handle.datasync()
        logger.warn(`${format.name}: dropped an unfinished last line (a write cut short when the process stopped)`, { seq: checked.blocks.length, id: idOf(undefined, existing.subarray(unfinished)), bytes: existing.length - unfinished })
      }
      if (checked.failure !== undefined) logger.warn(`${format.name} does not verify`, { seq: checked.failure.seq, id: checked.failure.id, error: checked.failure.error.name })
      return { file: new BlockFile(path, handle, format, unfinished ?? existing.length, logger, checked.failure), checked }
    } catch (err) {
      await handle.close()
      throw err
    }
  }

  /** Throws LedgerCorruptError once damage is known: a damaged file is never extended; ConfigError when opened read-only. */
  assertExtendable (): FileHandle {
    if (this.damage !== undefined) throw new LedgerCorruptError(`the ${this.#format.name} is damaged at block ${this.damage.seq}; it cannot be extended`, { cause: this.damage.error })
    if (this.#file === undefined) throw new ConfigError(`${this.#path} was opened read-only`)
    return this.#file
  }

  async append (block: Block): Promise<void> {
    await this.write(block)
    await this.durable()
  }

  /**
   * Appends a block's line without waiting for the disk: `durable` then waits for it. The
   * lines written meanwhile (other appends) share one datasync, and a later line is never
   * durable before an earlier one (one file, synced in order).
   */
  async write (block: Block): Promise<void> {
    const file = this.assertExtendable()
    const bytes = Buffer.from(blockLine(block))
    try {
      await file.appendFile(bytes)
    } catch (err) {
      // Take a partial line back off, or refuse further appends if even that fails.
      await file.truncate(this.#size).catch((truncateError: unknown) => {
        this.damage ??= { seq: block.seq, error: new LedgerCorruptError(`a failed write may have left part of block ${block.seq} in the file`, { cause: truncateError }) }
      })
      this.#logger.warn(`${this.#format.name} append failed`, { seq: block.seq, error: (err as Error).message })
      throw err
    }
    this.#size += bytes.length
    this.#unsyncedFrom ??= block.seq
  }

  /**
   * Resolves once every line written so far is on the disk: by a datasync started after the
   * last write, shared by the writes made while the one before it ran. A failed sync leaves
   * the file damaged (the lines may or may not be there), and every waiter gets its error.
   */
  async durable (): Promise<void> {
    const file = this.assertExtendable()
    this.#nextSync ??= this.#syncing.then(async () => {
      this.#nextSync = undefined
      const from = this.#unsyncedFrom
      this.#unsyncedFrom = undefined
      try {
        await file.datasync()
      } catch (err) {
        this.damage ??= { seq: from ?? 0, error: new LedgerCorruptError('the block file could not be synced: its newest blocks may be lost', { cause: err }) }
        throw err
      }
    })
    const sync = this.#nextSync
    this.#syncing = sync.catch(() => {})
    await sync
  }

  /** Re-reads and re-checks the whole file; also checks it still holds the blocks in `held`, in order. */
  async verify (held: readonly Block[], signal?: AbortSignal): Promise<LedgerVerification> {
    let bytes: Buffer
    try {
      bytes = await ownFile(this.#path, async () => readPlainFileWhole(this.#path)) ?? Buffer.alloc(0)
    } catch (err) {
      // Something other than a plain file in its place since it was opened: the blocks are not there.
      if (!(err instanceof LedgerCorruptError)) throw err
      const failure = { seq: 0, error: err }
      this.damage ??= failure
      return { ok: false, blocks: 0, failure }
    }
    const checked = await checkFile(bytes, this.#format, signal, held)
    const failure = checked.failure ?? divergence(held, checked.blocks)
    if (failure === undefined) return { ok: true, blocks: checked.blocks.length }
    this.damage ??= failure
    return { ok: false, blocks: failure.seq, failure }
  }

  async close (): Promise<void> {
    await this.#syncing
    await this.#file?.close()
  }
}

/**
 * Reads or opens a block file only as a plain file (no cap: a ledger grows with its run): a link,
 * a FIFO or a folder in its place is neither followed nor waited on, but a LedgerCorruptError
 * naming it (found in review: readIfExists hung on a FIFO, and a link's target was read and
 * appended to as this ledger).
 */
async function ownFile<T> (path: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read()
  } catch (err) {
    if (err instanceof StrayFileError) throw new LedgerCorruptError(`${path} is not a block file this ledger wrote (${err.message}): move it away`, { cause: err })
    throw err
  }
}

/**
 * Checks a file opened to be written. A last line with no newline, when all before it checks, is
 * a write a kill or a power cut stopped: its block was never durable, so nothing approved it or
 * acted on it, and whoever sent it sends it again (a replica acks a block once durable).
 * `unfinished` is then where the file ends without it; a file damaged before that line is kept
 * as it is. Read-only (an audit), such a line is damage: checkFile reports it.
 */
async function checkUnfinished (existing: Buffer, format: BlockFormat): Promise<{ checked: Checked, unfinished?: number }> {
  const end = existing.lastIndexOf(0x0a) + 1
  if (end === 0 || end === existing.length) return { checked: await checkFile(existing, format) }
  const checked = await checkFile(existing.subarray(0, end), format)
  return checked.failure === undefined ? { checked, unfinished: end } : { checked }
}

/** Whether `bytes` are the beginning of a header line of this format, of some difficulty, and no more. */
function cutHeader (bytes: Buffer, format: BlockFormat): boolean {
  if (bytes.includes(0x0a)) return false
  const text = bytes.toString('latin1')
  for (let difficulty = 0; difficulty <= 64; difficulty++) if (headerLine(format, difficulty).startsWith(text)) return true
  return false
}

/** The hash state after `[...head,`: the id preimage less `pow,difficulty]`. */
function headHash (head: readonly unknown[]): ReturnType<typeof createHash> {
  return createHash('sha256').update(JSON.stringify(head).slice(0, -1) + ',')
}

function headerLine (format: BlockFormat, difficulty: number): string {
  return JSON.stringify({ [format.name]: 1, difficulty }) + '\n'
}

/**
 * Checks a whole file; stops at the first failure and returns the good prefix with it. A
 * block the same as the one `held` has at its seq (blocks this ledger verified when it took
 * them) has its record verified already, at the same time: it is not verified again.
 */
async function checkFile (bytes: Buffer, format: BlockFormat, signal?: AbortSignal, held: readonly Block[] = []): Promise<Checked> {
  const { lines, complete } = splitLines(bytes)
  const blocks: Block[] = []
  /** Each block's time, by id. */
  const byId = new Map<string, number>()
  const records = new Set<string>()
  const headerText = utf8(lines[0])
  const header = parseJson(headerText) as { difficulty?: unknown } | undefined
  const difficulty = header?.difficulty
  if (typeof difficulty !== 'number' || !Number.isInteger(difficulty) || difficulty < 0 || difficulty > 64 ||
    (lines.length === 1 && !complete) || headerText + '\n' !== headerLine(format, difficulty)) {
    return { difficulty: 0, blocks, failure: { seq: 0, error: new LedgerCorruptError(`the ${format.name} header is damaged`) } }
  }
  const fail = (seq: number, message: string, id: string | undefined, cause?: unknown): Checked => ({
    difficulty,
    blocks,
    failure: { seq, id, error: cause instanceof ConclaveError ? cause : new LedgerCorruptError(`block ${seq}${id === undefined ? '' : ` (${id})`}: ${message}`, { cause }) }
  })

  const body = lines.slice(1)
  let parsed: Array<{ text?: string, json: unknown }> = []
  for (const [seq, bytesOfLine] of body.entries()) {
    signal?.throwIfAborted()
    if (seq % PREVERIFIED === 0) parsed = await parseWindow(body.slice(seq, seq + PREVERIFIED))
    const { text, json } = parsed[seq % PREVERIFIED] as { text?: string, json: unknown }
    const id = idOf(json, bytesOfLine)
    if (seq === lines.length - 2 && !complete) return fail(seq, 'the file ends inside this block (a torn write)', id)
    if (text === undefined) return fail(seq, 'not UTF-8', id)
    const block = Block.safeParse(json)
    if (!block.success) return fail(seq, 'not a well-formed block', id, block.error)
    const b = block.data
    if (blockLine(b) !== text + '\n') return fail(seq, 'not in canonical form', id)
    if (b.seq !== seq) return fail(seq, `says seq ${b.seq}`, id)
    const fault = proofFault(b.id, format.id(b, difficulty), difficulty)
    if (fault !== undefined) return fail(seq, fault, id)
    if (new Set(b.parents).size !== b.parents.length || b.parents.some(p => !byId.has(p))) return fail(seq, 'approves a block that does not precede it', id)
    if (b.parents.some(p => (byId.get(p) as number) > b.time)) return fail(seq, 'is dated before a block it approves', id)
    if (records.has(b.record)) return fail(seq, 'anchors a record a second time', id)
    const known = held[seq]
    if (known === undefined || known.id !== b.id || known.record !== b.record || known.time !== b.time) {
      try {
        await verifyRecord(b.record, { now: b.time })
      } catch (err) {
        return fail(seq, 'its record does not verify', id, err)
      }
    }
    blocks.push(b)
    byId.set(b.id, b.time)
    records.add(b.record)
  }
  return { difficulty, blocks }
}

/**
 * Lines read ahead of the checks: their records' signatures are checked together on every
 * core first (preverifyRecords), well within what the process remembers as verified.
 */
const PREVERIFIED = 4096

/** Each line's text and JSON (undefined where it has none), its record's signature checked ahead. */
async function parseWindow (window: readonly Buffer[]): Promise<Array<{ text?: string, json: unknown }>> {
  const parsed = window.map(line => {
    const text = utf8(line)
    return { text, json: parseJson(text) }
  })
  await preverifyRecords(parsed.flatMap(({ json }) => {
    const record = (json as { record?: unknown } | undefined)?.record
    return typeof record === 'string' ? [record] : []
  }))
  return parsed
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

/** `text` as JSON, or undefined when it is none (or missing). */
export function parseJson (text: string | undefined): unknown {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
