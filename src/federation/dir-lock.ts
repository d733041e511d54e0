import { readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { RunDirectoryError } from '../core/errors.ts'

/** The file a run or a member process holds while it writes its directory, so that no second process writes there at once. */
export const RUN_LOCK = '.conclave-lock'

const SQLITE_BUSY = 5
const SQLITE_NOTADB = 26
/** Where a SQLite file's header keeps its user_version: here the holder's process id, for the refusal. */
const USER_VERSION_AT = 60
const SQLITE_HEADER = 'SQLite format 3\0'

/** The lock files this process holds, by device and inode. */
const held = new Set<string>()

/**
 * Takes `dir` (which must exist) for this process until the returned release is called; refused
 * (RunDirectoryError, naming the holder's process id) while another process, or another call in
 * this one, holds it.
 *
 * The lock is the operating system's: SQLite's exclusive lock on `.conclave-lock` (fcntl). It is
 * one process's at a time, also between containers sharing a volume, where process ids mean
 * nothing, and the system lets it go however the process ends, so a killed process's lock is
 * free at once. A pid file was read, then written over: processes started together after a kill
 * all took it (found red-teaming). The file stays when released (removing it would let a process
 * that opened it just before take a lock of no file), and the process holding it never opens it
 * otherwise: closing any descriptor of a file lets go of the process's fcntl locks on it.
 */
export async function lockRunDir (dir: string): Promise<() => Promise<void>> {
  const path = join(dir, RUN_LOCK)
  const before = await inodeOf(path)
  if (before !== undefined && held.has(before)) throw inUse(dir, process.pid)
  for (let tries = 0; tries < 2; tries++) {
    const db = new DatabaseSync(path, { timeout: 0 })
    try {
      db.exec('PRAGMA locking_mode = EXCLUSIVE') // kept after the commit below, until closed
      db.exec('PRAGMA journal_mode = MEMORY') // no journal file beside it
      db.exec('BEGIN EXCLUSIVE')
      db.exec(`PRAGMA user_version = ${process.pid}`)
      db.exec('COMMIT')
    } catch (err) {
      db.close()
      const code = (err as { errcode?: number }).errcode
      if (code === SQLITE_BUSY) throw inUse(dir, await holderOf(path))
      if (code !== SQLITE_NOTADB || tries > 0) throw new RunDirectoryError(`cannot take ${path}: ${(err as Error).message}`, { cause: err })
      await takeEarlierLock(dir, path)
      continue
    }
    const inode = await inodeOf(path) ?? ''
    held.add(inode)
    return async () => {
      held.delete(inode)
      db.close()
    }
  }
  throw new RunDirectoryError(`cannot take ${path}`)
}

function inUse (dir: string, holder: number | undefined): RunDirectoryError {
  const who = holder === process.pid ? 'this process' : holder === undefined ? 'another process' : `process ${holder}`
  return new RunDirectoryError(`${dir} is in use: ${who} is running in it (it holds ${RUN_LOCK}); wait for it to end or stop it, then run again`)
}

/** A file's device and inode, without opening it; undefined when there is none. */
async function inodeOf (path: string): Promise<string | undefined> {
  const info = await stat(path).catch(() => undefined)
  return info === undefined ? undefined : `${info.dev}:${info.ino}`
}

/** The process id a lock file names: a SQLite lock's header, or an earlier Conclave's text. Never read by its holder. */
async function holderOf (path: string): Promise<number | undefined> {
  const bytes = await readFile(path).catch(() => undefined)
  if (bytes === undefined) return undefined
  const pid = bytes.subarray(0, SQLITE_HEADER.length).toString('latin1') === SQLITE_HEADER
    ? (bytes.length >= USER_VERSION_AT + 4 ? bytes.readInt32BE(USER_VERSION_AT) : 0)
    : Number.parseInt(bytes.toString('utf8'), 10)
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}

/**
 * A lock file that is no SQLite file: an earlier Conclave's, its process id as text. Refused
 * while that process lives; otherwise removed.
 */
async function takeEarlierLock (dir: string, path: string): Promise<void> {
  const holder = await holderOf(path)
  if (holder !== undefined && holder !== process.pid && alive(holder)) throw inUse(dir, holder)
  await rm(path, { force: true })
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' // someone else's process, running
  }
}
