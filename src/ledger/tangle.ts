import { createHash } from 'node:crypto'
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { ConclaveError, DuplicateRecordError, LedgerCorruptError } from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/logger.ts'
import { verifyRecord } from '../identity/index.ts'
import { Block, type Ledger, type LedgerVerification } from './index.ts'

/**
 * The embedded tangle: a DAG of signed records, one JSON block per line in
 * `tangle.jsonl`, after a header line that fixes the proof-of-work difficulty.
 *
 * - A block's id is the sha-256 of [seq, parents, record, time, pow, difficulty], so any
 *   change to a block, or to the header's difficulty, breaks its id.
 * - Each line must be the block's canonical JSON exactly: a flipped byte that leaves the
 *   values intact (a key's case, an escape) is caught too.
 * - Tip selection: a new block approves the two oldest tips (unapproved blocks, lowest
 *   seq first), so nothing stays unconfirmed for long; with a single tip it approves that
 *   tip and the newest other block; the genesis block approves nothing.
 * - Proof of work: the id must have `difficulty` leading zero bits (rate-limits spam;
 *   integrity comes from the hashes and signatures).
 *
 * The file is re-verified on open. A damaged file still opens: `verify()` names the first
 * bad line, `blocks()` yields only the good prefix, and `append` refuses to extend it.
 */
export interface TangleOptions {
  dir: string
  /** Leading zero bits required of block ids; ignored when opening an existing file. @default 8 */
  difficulty?: number
  logger?: Logger
  /** Unix seconds. @default the system clock */
  clock?: () => number
}

const FILE = 'tangle.jsonl'

type Failure = { seq: number, id?: string, error: ConclaveError }

export async function openTangle (options: TangleOptions): Promise<Ledger> {
  await mkdir(options.dir, { recursive: true })
  const path = join(options.dir, FILE)
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw err
  })
  const file = await open(path, 'a')
  if (text === undefined || text.length === 0) {
    const difficulty = options.difficulty ?? 8
    await file.write(headerLine(difficulty))
    await file.datasync()
    return new Tangle(file, difficulty, [], undefined, options)
  }
  const { difficulty, blocks, failure } = await load(text)
  if (failure !== undefined) (options.logger ?? silentLogger).warn('tangle does not verify', { seq: failure.seq, error: failure.error.name })
  return new Tangle(file, difficulty, blocks, failure, options)
}

class Tangle implements Ledger {
  readonly #file: FileHandle
  readonly #difficulty: number
  readonly #blocks: Block[]
  readonly #byId = new Map<string, Block>()
  readonly #records = new Set<string>()
  readonly #tips = new Set<string>()
  readonly #failure?: Failure
  readonly #clock: () => number
  #lock: Promise<unknown> = Promise.resolve()

  constructor (file: FileHandle, difficulty: number, blocks: Block[], failure: Failure | undefined, options: TangleOptions) {
    this.#file = file
    this.#difficulty = difficulty
    this.#blocks = blocks
    this.#failure = failure
    this.#clock = options.clock ?? (() => Math.floor(Date.now() / 1000))
    for (const b of blocks) this.#index(b)
  }

  async append (jwt: string, options: { signal?: AbortSignal } = {}): Promise<Block> {
    options.signal?.throwIfAborted()
    const run = this.#lock.then(async () => {
      if (this.#failure !== undefined) throw new LedgerCorruptError(`the tangle is damaged at block ${this.#failure.seq}; it cannot be extended`)
      if (this.#records.has(jwt)) throw new DuplicateRecordError('this signed record is already anchored')
      const time = this.#clock()
      await verifyRecord(jwt, { now: time })
      const seq = this.#blocks.length
      const parents = tipSelection(this.#blocks, this.#tips)
      const { id, pow } = mine(seq, parents, jwt, time, this.#difficulty)
      const block: Block = { id, seq, parents, record: jwt, time, pow }
      await this.#file.write(blockLine(block))
      await this.#file.datasync()
      this.#blocks.push(block)
      this.#index(block)
      return block
    })
    this.#lock = run.catch(() => undefined)
    return run
  }

  async get (id: string): Promise<Block | undefined> {
    return this.#byId.get(id)
  }

  async * blocks (options: { signal?: AbortSignal } = {}): AsyncIterable<Block> {
    for (const block of [...this.#blocks]) {
      options.signal?.throwIfAborted()
      yield block
    }
  }

  async verify (): Promise<LedgerVerification> {
    if (this.#failure !== undefined) return { ok: false, blocks: this.#blocks.length, failure: this.#failure }
    return { ok: true, blocks: this.#blocks.length }
  }

  async close (): Promise<void> {
    await this.#lock
    await this.#file.close()
  }

  #index (block: Block): void {
    this.#byId.set(block.id, block)
    this.#records.add(block.record)
    for (const p of block.parents) this.#tips.delete(p)
    this.#tips.add(block.id)
  }
}

/** The two oldest tips; with one tip, it and the newest other block; at genesis, none. */
export function tipSelection (blocks: readonly Block[], tips: ReadonlySet<string>): string[] {
  const oldest = blocks.filter(b => tips.has(b.id)).slice(0, 2).map(b => b.id)
  if (oldest.length === 1) {
    const other = blocks.findLast(b => b.id !== oldest[0])
    if (other !== undefined) oldest.push(other.id)
  }
  return oldest
}

function headerLine (difficulty: number): string {
  return JSON.stringify({ tangle: 1, difficulty }) + '\n'
}

function blockLine (b: Block): string {
  return JSON.stringify({ id: b.id, seq: b.seq, parents: b.parents, record: b.record, time: b.time, pow: b.pow }) + '\n'
}

function blockId (seq: number, parents: readonly string[], record: string, time: number, pow: number, difficulty: number): string {
  return createHash('sha256').update(JSON.stringify([seq, parents, record, time, pow, difficulty])).digest('hex')
}

export function leadingZeroBits (hex: string): number {
  let bits = 0
  for (const c of hex) {
    const nibble = parseInt(c, 16)
    if (nibble === 0) { bits += 4; continue }
    return bits + Math.clz32(nibble) - 28
  }
  return bits
}

function mine (seq: number, parents: readonly string[], record: string, time: number, difficulty: number): { id: string, pow: number } {
  for (let pow = 0; ; pow++) {
    const id = blockId(seq, parents, record, time, pow, difficulty)
    if (leadingZeroBits(id) >= difficulty) return { id, pow }
  }
}

async function load (text: string): Promise<{ difficulty: number, blocks: Block[], failure?: Failure }> {
  const lines = text.split('\n')
  const blocks: Block[] = []
  const byId = new Map<string, Block>()
  const records = new Set<string>()
  const fail = (seq: number, message: string, id?: string, cause?: unknown): Failure =>
    ({ seq, id, error: cause instanceof ConclaveError ? cause : new LedgerCorruptError(`block ${seq}${id === undefined ? '' : ` (${id})`}: ${message}`, { cause }) })

  const header = parseJson(lines[0] ?? '') as { tangle?: unknown, difficulty?: unknown } | undefined
  const difficulty = typeof header?.difficulty === 'number' ? header.difficulty : -1
  if (header?.tangle !== 1 || !Number.isInteger(difficulty) || difficulty < 0 || difficulty > 64 || lines[0] + '\n' !== headerLine(difficulty)) {
    return { difficulty: 0, blocks, failure: fail(0, 'the tangle header is damaged') }
  }
  if (lines.at(-1) !== '') return { difficulty, blocks, failure: fail(Math.max(0, lines.length - 2), 'the file does not end with a complete line') }

  for (const [i, line] of lines.slice(1, -1).entries()) {
    const json = parseJson(line) as { id?: unknown } | undefined
    const parsed = Block.safeParse(json)
    const id = typeof json?.id === 'string' ? json.id : undefined
    if (!parsed.success) return { difficulty, blocks, failure: fail(i, 'not a well-formed block', id) }
    const b = parsed.data
    if (blockLine(b) !== line + '\n') return { difficulty, blocks, failure: fail(i, 'not in canonical form', b.id) }
    if (b.seq !== i) return { difficulty, blocks, failure: fail(i, `says seq ${b.seq}`, b.id) }
    if (blockId(b.seq, b.parents, b.record, b.time, b.pow, difficulty) !== b.id) return { difficulty, blocks, failure: fail(i, 'its id is not the hash of its content', b.id) }
    if (leadingZeroBits(b.id) < difficulty) return { difficulty, blocks, failure: fail(i, `its id lacks ${difficulty} bits of proof of work`, b.id) }
    if (new Set(b.parents).size !== b.parents.length || b.parents.some(p => !byId.has(p))) return { difficulty, blocks, failure: fail(i, 'approves a block that does not precede it', b.id) }
    if (records.has(b.record)) return { difficulty, blocks, failure: fail(i, 'anchors a record a second time', b.id) }
    try {
      await verifyRecord(b.record, { now: b.time })
    } catch (err) {
      return { difficulty, blocks, failure: fail(i, 'its record does not verify', b.id, err) }
    }
    blocks.push(b)
    byId.set(b.id, b)
    records.add(b.record)
  }
  return { difficulty, blocks }
}

function parseJson (line: string): unknown {
  try {
    return JSON.parse(line)
  } catch {
    return undefined
  }
}
