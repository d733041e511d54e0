import { createHash } from 'node:crypto'
import { constants } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { z } from 'zod'
import { DamagedFileError, StrayFileError } from './errors.ts'
import { openPlainFile, readOwnFile, writeAtomic } from './files.ts'

/** How long the log stays open after an append. */
const IDLE_CLOSE_MS = 1000

/** The log's first line: the sha-256 of the snapshot its records go on top of. */
const Header = z.strictObject({ snapshot: z.string().regex(/^[0-9a-f]{64}$/) })

export interface SnapshotLogOptions {
  /** Permissions of both files when created. @default 0o600 */
  mode?: number
  /**
   * When the snapshot is rewritten and the log started afresh: once the log holds more than
   * `factor` × the snapshot's bytes plus `floor`, so the rewrites cost a bounded multiple of
   * what was appended. @default { factor: 4, floor: 262144 }
   */
  compaction?: { factor: number, floor: number }
}

/** What a snapshot log holds: the snapshot's text (none yet: undefined) and the complete records after it, in order. */
export interface SnapshotLogContents { snapshot?: string, records: string[] }

/**
 * A state kept as a snapshot file plus an append-only log of changes beside it (`<path>.log`,
 * one JSON line per change, each fdatasync'ed before `append` resolves), so saving a change
 * costs the change, not the whole state. The log's header names the snapshot it follows by
 * hash, which is what makes every moment of a kill safe:
 *  - mid-append: the torn last line is no record (a record ends with its newline) and the
 *    next append writes over it;
 *  - mid-rewrite: the snapshot is made durable before the new log replaces the old, and an
 *    old log whose header names another snapshot holds nothing the new snapshot lacks.
 * The caller parses the texts (and calls bad ones damage); this class only keeps the files.
 */
export class SnapshotLog {
  readonly path: string
  readonly logPath: string
  readonly #mode: number
  readonly #compaction: { factor: number, floor: number }
  #snapshotBytes: number
  /**
   * Bytes of the log that are its header and complete records; undefined when there is no log
   * that follows the snapshot (none yet, a stale one, a failed append): the next append
   * rewrites the snapshot instead.
   */
  #logBytes: number | undefined
  /** Bytes past `#logBytes` that the next append must cut off (a torn record). */
  #torn: boolean
  /**
   * The log, kept open between appends (an agent appends at every step: opening and closing
   * the file each time cost more than the write) and closed once no append came for a while.
   */
  #handle?: FileHandle
  #idle?: NodeJS.Timeout

  private constructor (path: string, options: SnapshotLogOptions, snapshotBytes: number, logBytes: number | undefined, torn: boolean) {
    this.path = path
    this.logPath = `${path}.log`
    this.#mode = options.mode ?? 0o600
    this.#compaction = options.compaction ?? { factor: 4, floor: 256 * 1024 }
    this.#snapshotBytes = snapshotBytes
    this.#logBytes = logBytes
    this.#torn = torn
  }

  /** Reads both files; writes nothing. Throws DamagedFileError for a log whose header is not one, or a log without its snapshot. */
  static async open (path: string, options: SnapshotLogOptions = {}): Promise<{ log: SnapshotLog, contents: SnapshotLogContents }> {
    const snapshot = await readOwn(path)
    const log = await readOwn(`${path}.log`)
    const complete = log === undefined ? 0 : log.lastIndexOf(0x0a) + 1
    const lines = log === undefined ? [] : log.subarray(0, complete).toString('utf8').split('\n').slice(0, -1)
    const contents: SnapshotLogContents = { snapshot: snapshot?.toString('utf8'), records: [] }
    if (lines.length === 0) return { log: new SnapshotLog(path, options, snapshot?.length ?? 0, undefined, false), contents }
    const header = parseHeader(lines[0] as string, `${path}.log`)
    if (snapshot === undefined) throw new DamagedFileError(`${path}.log holds changes to ${path}, which is missing: move ${path}.log away too`)
    // A header naming another snapshot: a rewrite stopped between the snapshot and the new log; the snapshot holds it all.
    if (header.snapshot !== sha256(snapshot)) return { log: new SnapshotLog(path, options, snapshot.length, undefined, false), contents }
    contents.records = lines.slice(1)
    return { log: new SnapshotLog(path, options, snapshot.length, complete, complete < (log?.length ?? 0)), contents }
  }

  /**
   * Appends one change (a line of JSON) durably; rewrites the snapshot from `snapshot()` instead
   * where there is no log to append to, and after it once the log has grown past the bound.
   */
  async append (record: string, snapshot: () => string): Promise<void> {
    if (this.#logBytes === undefined) return this.rewrite(snapshot())
    const bytes = Buffer.from(record + '\n')
    const at = this.#logBytes
    clearTimeout(this.#idle)
    this.#logBytes = undefined // until the record is durable: a failed append leaves the state to a rewrite
    try {
      const file = this.#handle ??= await openLog(this.logPath)
      await file.write(bytes, 0, bytes.length, at)
      if (this.#torn) await file.truncate(at + bytes.length)
      await file.datasync()
    } catch (err) {
      await this.close().catch(() => {})
      throw err
    }
    this.#torn = false
    this.#logBytes = at + bytes.length
    // Unref'd: it keeps no process alive, and holds me until it closes the file (never left to the garbage collector).
    this.#idle = setTimeout(() => { this.close().catch(() => {}) }, IDLE_CLOSE_MS).unref()
    if (this.#logBytes > this.#compaction.factor * this.#snapshotBytes + this.#compaction.floor) await this.rewrite(snapshot())
  }

  /** Replaces the snapshot with the whole state, then starts an empty log after it. */
  async rewrite (snapshot: string): Promise<void> {
    this.#logBytes = undefined
    // The log is replaced by a new file: the open one would go on writing to the old.
    await this.close()
    const bytes = Buffer.from(snapshot)
    await writeAtomic(this.path, bytes, { mode: this.#mode, sync: true })
    const header = Buffer.from(JSON.stringify({ snapshot: sha256(bytes) }) + '\n')
    await writeAtomic(this.logPath, header, { mode: this.#mode, sync: true })
    this.#snapshotBytes = bytes.length
    this.#logBytes = header.length
    this.#torn = false
  }

  /** Closes the log if it is open; a later append opens it again. */
  async close (): Promise<void> {
    clearTimeout(this.#idle)
    const handle = this.#handle
    this.#handle = undefined
    await handle?.close()
  }
}

/** One of the two files, whole (a log may be large: no cap), but only as a plain file, as this class writes it. */
async function readOwn (path: string): Promise<Buffer | undefined> {
  return readOwnFile(path, { is: 'a file this agent wrote', error: DamagedFileError })
}

/**
 * The log opened again to append (after its idle close), a plain file only, as this class writes
 * it: a link or a FIFO put there since is neither followed nor written to, but a DamagedFileError
 * naming it; so is a log gone since (not made anew: its header would be missing).
 */
async function openLog (path: string): Promise<FileHandle> {
  let file: FileHandle | undefined
  try {
    file = await openPlainFile(path, constants.O_RDWR)
  } catch (err) {
    if (err instanceof StrayFileError) throw new DamagedFileError(`${path} is not a file this agent wrote (${err.message}): move it away`, { cause: err })
    throw err
  }
  if (file === undefined) throw new DamagedFileError(`${path} went while this agent appended to it`)
  return file
}

function parseHeader (line: string, path: string): z.infer<typeof Header> {
  try {
    return Header.parse(JSON.parse(line))
  } catch (err) {
    throw new DamagedFileError(`${path} does not start with a log header (${(err as Error).message}): move it away`, { cause: err })
  }
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')
