import { FsDatastore } from 'datastore-fs'
import { Key } from 'interface-datastore'
import { createHash } from 'node:crypto'
import { constants } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { DamagedFileError, StoreWriteError, StrayFileError } from '../core/errors.ts'
import { openPlainFile, readOwnFile } from '../core/files.ts'
import type { AbortOptions } from '../core/options.ts'

type Query = Parameters<FsDatastore['_all']>[0]
type KeyQuery = Parameters<FsDatastore['_allKeys']>[0]
type Pair = { key: Key, value: Uint8Array }

/** Helia's record that a block is held by pins: one per block. */
export const BLOCK_RECORD = '/pinned-block/'
/** The log of block records, beside datastore-fs's files (whose names end in `.data`, so its queries never list it). */
export const PIN_LOG = 'pinned-blocks.log'
/** A line's check: the first bytes of sha-256 over the previous line's check and this line, in hex. */
const CHECK_HEX = 16
/** What a deleted record's line holds instead of a value. */
const DELETED = '-'

/** What FsDatastore throws for a key it lacks; Helia tells a missing record by the name. */
class NotFoundError extends Error {
  override name = 'NotFoundError'
}

/** A log line's check, chained: a line moved, dropped from the middle or changed fails every check after it. */
function lineCheck (previous: string, body: string): string {
  return createHash('sha256').update(previous).update(' ').update(body).digest('hex').slice(0, CHECK_HEX)
}

/** The log's line for a block record (`value` undefined: deleted) after the line whose check is `previous`, newline included, and its check. */
export function pinLogLine (previous: string, name: string, value: Uint8Array | undefined): { text: string, check: string } {
  const body = `${name} ${value === undefined ? DELETED : Buffer.from(value).toString('base64url')}`
  const check = lineCheck(previous, body)
  return { text: `${body} ${check}\n`, check }
}

/** One complete line of the log: `<key> <value in base64url, or -> <check>`. */
export interface PinLogLine { name: string, value?: Uint8Array, check: string }

/**
 * The complete lines of a pin log, checked in order; throws DamagedFileError naming the
 * first line that is not one (`path` names the file). A last line without its newline is a
 * torn write, not a line: `complete` is where it starts.
 */
export function parsePinLog (bytes: Buffer, path: string): { lines: PinLogLine[], complete: number } {
  const complete = bytes.lastIndexOf(0x0a) + 1
  const lines: PinLogLine[] = []
  let previous = ''
  for (const [i, text] of bytes.subarray(0, complete).toString('latin1').split('\n').slice(0, -1).entries()) {
    const [name, value, check, ...rest] = text.split(' ')
    const bad = (why: string): never => { throw new DamagedFileError(`${path} line ${i + 1} ${why}: the pin log is damaged`) }
    if (name === undefined || value === undefined || check === undefined || rest.length > 0) bad('is not "key value check"')
    if (!(name as string).startsWith(BLOCK_RECORD) || (name as string).length === BLOCK_RECORD.length) bad('does not name a block record')
    if (value !== DELETED && !/^[A-Za-z0-9_-]+$/.test(value as string)) bad('holds no base64url value')
    if (check !== lineCheck(previous, `${name as string} ${value as string}`)) bad('fails its check')
    lines.push({ name: name as string, ...(value === DELETED ? {} : { value: Buffer.from(value as string, 'base64url') }), check: check as string })
    previous = check as string
  }
  return { lines, complete }
}

/**
 * The datastore under Helia's pins. Helia records a pin's blocks one after another, each a
 * read that misses and a write; as datastore-fs files that is a temporary file and a rename
 * per block, most of a pin's time. Here block records go to one append-only log
 * (`pinned-blocks.log`, read whole when the store opens): a record's write updates memory
 * and joins the next append, and any other write, such as the pin's own record that Helia
 * writes after all its blocks', first appends what is pending and syncs the log once, and
 * fails if that failed, so a pin is still recorded only once its blocks are. A torn last
 * line (a kill mid-append) is no record and the next append writes over it. Block records
 * that earlier versions wrote as files are still read; once the log has a record of the
 * same block (written later), the log's wins and the file is left as it was.
 * A store whose log could not be written refuses every later write: reopen it.
 */
export class PinDatastore extends FsDatastore {
  readonly #logPath: string
  /** Every block record of the log, by key; undefined for one deleted. */
  readonly #log = new Map<string, Uint8Array | undefined>()
  /** Block records that are files of datastore-fs, not (yet) in the log. */
  readonly #files = new Set<string>()
  /** Lines not yet appended. */
  #pending: string[] = []
  #check = ''
  /** Bytes of the log that are complete lines; a torn tail past them is written over. */
  #size = 0
  #torn = false
  #unsynced = false
  #handle?: FileHandle
  #writing: Promise<void> = Promise.resolve()
  /** An append or sync that failed and was not yet thrown by `settle`. */
  #failure: unknown
  /** Set once an append failed: what is in memory may no longer be on disk. */
  #broken: unknown

  constructor (path: string) {
    super(path)
    this.#logPath = join(path, PIN_LOG)
  }

  override async open (): Promise<void> {
    await super.open()
    for await (const key of super.queryKeys({ prefix: BLOCK_RECORD })) this.#files.add(key.toString())
    const bytes = await this.#readLog()
    if (bytes === undefined) return
    const { lines, complete } = parsePinLog(bytes, this.#logPath)
    for (const { name, value } of lines) this.#log.set(name, value)
    this.#check = lines.at(-1)?.check ?? ''
    this.#size = complete
    this.#torn = complete < bytes.length
  }

  override async put (key: Key, value: Uint8Array, options?: AbortOptions): Promise<Key> {
    const name = key.toString()
    if (!name.startsWith(BLOCK_RECORD)) {
      await this.settle()
      this.#assertWritable()
      return super.put(key, value, options)
    }
    this.#assertWritable()
    this.#record(name, value)
    return key
  }

  override async get (key: Key, options?: AbortOptions): Promise<Uint8Array> {
    const name = key.toString()
    if (!name.startsWith(BLOCK_RECORD) || (!this.#log.has(name) && this.#files.has(name))) return super.get(key, options)
    const value = this.#log.get(name)
    if (value === undefined) throw new NotFoundError(`no record ${name}`)
    return value
  }

  override async has (key: Key, options?: AbortOptions): Promise<boolean> {
    const name = key.toString()
    if (!name.startsWith(BLOCK_RECORD)) return super.has(key, options)
    return this.#log.has(name) ? this.#log.get(name) !== undefined : this.#files.has(name)
  }

  override async delete (key: Key, options?: AbortOptions): Promise<void> {
    const name = key.toString()
    if (!name.startsWith(BLOCK_RECORD)) return super.delete(key, options)
    this.#assertWritable()
    if (this.#log.get(name) !== undefined || this.#files.has(name)) this.#record(name, undefined)
  }

  override async * _all (q: Query, options?: AbortOptions): AsyncGenerator<Pair> {
    for await (const pair of super._all(q, options)) if (!this.#log.has(pair.key.toString())) yield pair
    for (const [name, value] of this.#log) if (value !== undefined) yield { key: new Key(name), value }
  }

  override async * _allKeys (q: KeyQuery, options?: AbortOptions): AsyncGenerator<Key> {
    for await (const key of super._allKeys(q, options)) if (!this.#log.has(key.toString())) yield key
    for (const [name, value] of this.#log) if (value !== undefined) yield new Key(name)
  }

  /** Appends what is pending and syncs the log; throws, once, the failure of an append since the last settle. */
  async settle (): Promise<void> {
    this.#flush()
    this.#writing = this.#writing.then(async () => {
      if (!this.#unsynced || this.#broken !== undefined) return
      this.#unsynced = false
      await this.#handle?.datasync()
    }).catch((err: unknown) => { this.#fail(err) })
    await this.#writing
    const failure = this.#failure
    this.#failure = undefined
    if (failure !== undefined) throw failure
  }

  override async close (): Promise<void> {
    try {
      await this.settle()
    } finally {
      await this.#handle?.close()
      this.#handle = undefined
      await super.close()
    }
  }

  #record (name: string, value: Uint8Array | undefined): void {
    const { text, check } = pinLogLine(this.#check, name, value)
    this.#check = check
    this.#pending.push(text)
    this.#log.set(name, value)
    // Appended together with the records written in the same tick: Helia writes a pin's one after another.
    if (this.#pending.length === 1) setImmediate(() => { this.#flush() })
  }

  /** Starts appending the pending lines after the writes before them. */
  #flush (): void {
    if (this.#pending.length === 0) return
    const bytes = Buffer.from(this.#pending.join(''), 'latin1')
    this.#pending = []
    this.#writing = this.#writing.then(async () => {
      if (this.#broken !== undefined) return
      const file = this.#handle ??= await this.#openLog()
      await file.write(bytes, 0, bytes.length, this.#size)
      if (this.#torn) await file.truncate(this.#size + bytes.length)
      this.#size += bytes.length
      this.#torn = false
      this.#unsynced = true
    }).catch((err: unknown) => { this.#fail(err) })
  }

  /**
   * The log, whole (no cap: it grows with the pins), but only as a plain file, as this store
   * writes it: a link or a FIFO there is neither followed nor waited on, but a DamagedFileError naming it.
   */
  async #readLog (): Promise<Buffer | undefined> {
    return readOwnFile(this.#logPath, { is: 'the pin log this store wrote', error: DamagedFileError })
  }

  /**
   * The log opened to write, a plain file only: a link, FIFO or folder put there since it was
   * read is a StoreWriteError naming it, neither followed nor waited on. Made anew where it held
   * no complete line, else opened as it is: a log gone since it was read is a StoreWriteError,
   * not a new file with a hole where its lines were.
   */
  async #openLog (): Promise<FileHandle> {
    const fresh = this.#size === 0 && !this.#torn
    let file: FileHandle | undefined
    try {
      file = await openPlainFile(this.#logPath, fresh ? constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC : constants.O_RDWR)
    } catch (err) {
      if (err instanceof StrayFileError) throw new StoreWriteError(`the pin log ${this.#logPath} cannot be written (${err.message}): move it away`, { cause: err })
      throw err
    }
    if (file === undefined) throw new StoreWriteError(`the pin log ${this.#logPath} went since the store opened: reopen the store`)
    return file
  }

  #fail (err: unknown): void {
    this.#failure ??= err
    this.#broken ??= err
  }

  #assertWritable (): void {
    if (this.#broken !== undefined) throw new StoreWriteError(`the pin log ${this.#logPath} could not be written (${(this.#broken as Error).message}): reopen the store`, { cause: this.#broken })
  }
}
