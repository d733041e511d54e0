import { constants, type Stats } from 'node:fs'
import { lstat, mkdir, open, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { RunDirectoryError } from '../core/errors.ts'

/** The lock a run or a member process holds while it writes its directory: an empty SQLite file. */
export const LOCK_FILE = '.conclave-lock.db'
/** Beside it while held: the holder's process id, for the refusal (an earlier Conclave's lock had only this). */
export const LOCK_HOLDER_FILE = '.conclave-lock'

const SQLITE_BUSY = 5
/**
 * How long a take waits on another's before it is refused. Not 0: two takes at one moment both
 * hold SQLite's shared lock on the way to the exclusive one, and with no wait both gave up, so
 * neither held the directory. With a wait, the one refused the reserved lock lets go of its
 * shared one while it waits, and the other goes on to hold the directory.
 */
const BUSY_WAIT_MS = 1000

/** The lock files this process holds, by device and inode. */
const held = new Set<string>()
/** Takes in this process, one at a time: a second take of a directory then finds the first in `held`. */
let taking: Promise<unknown> = Promise.resolve()

/**
 * Takes `dir` (which must exist) for this process until the returned release is called; refused
 * (RunDirectoryError, naming the holder's process id) while another process, or another take in
 * this one, holds it.
 *
 * The lock is the operating system's: SQLite's exclusive lock (fcntl) on `.conclave-lock.db`,
 * held in a transaction that writes nothing, so the file stays empty and no crash can leave it
 * damaged. It is one process's at a time, also between containers sharing a volume, where
 * process ids mean nothing, and the system lets it go however the process ends, so a killed
 * process's directory is free at once. The process-id file it was before was read, then written
 * over: processes started together after a kill all took it (found red-teaming). The lock file
 * stays when released (removing it would let a process that opened it just before hold a lock
 * of no file), and its holder never opens it otherwise: closing any descriptor of a file lets go
 * of the process's fcntl locks on it.
 */
export async function lockRunDir (dir: string): Promise<() => Promise<void>> {
  const take = taking.then(async () => lock(dir))
  taking = take.catch(() => {})
  return take
}

/** Runs `body` holding `dir` (made when missing), and lets go of it however `body` ends. */
export async function holdingDir<T> (dir: string, body: () => Promise<T>): Promise<T> {
  await mkdir(dir, { recursive: true })
  const release = await lockRunDir(dir)
  try {
    return await body()
  } finally {
    await release()
  }
}

async function lock (dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE)
  const holderPath = join(dir, LOCK_HOLDER_FILE)
  const before = await lstat(path).catch(() => undefined)
  if (before !== undefined && held.has(inodeKey(before))) throw inUse(dir, process.pid)
  // Opened to be written first (nothing is held yet, so closing it lets go of nothing): SQLite
  // opens a file it cannot write read-only, and there its exclusive lock is a shared one that
  // any number of processes hold at once (found red-teaming: a group's shared run directory).
  await (await openPlain(path, constants.O_RDWR | constants.O_CREAT).catch((err: unknown) => { throw notOurs(path, err) })).close()
  let db: DatabaseSync | undefined
  try {
    db = new DatabaseSync(path, { timeout: BUSY_WAIT_MS })
    db.exec('PRAGMA journal_mode = MEMORY') // no journal file beside it: nothing is written
    // Held until the release. Not in SQLite's exclusive locking mode: there a take refused the
    // reserved lock kept its shared one while it waited, the other waited for that to go, and
    // both were refused (two takes at one moment: 6 of 15 trials).
    db.exec('BEGIN EXCLUSIVE')
  } catch (err) {
    db?.close()
    if ((err as { errcode?: number }).errcode === SQLITE_BUSY) throw inUse(dir, await holderOf(holderPath))
    throw notOurs(path, err)
  }
  const inode = inodeKey(await lstat(path))
  held.add(inode)
  const letGo = (): void => {
    held.delete(inode)
    db.close()
  }
  try {
    const file = await openPlain(holderPath, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC)
    try {
      await file.writeFile(`${process.pid}\n`)
    } finally {
      await file.close()
    }
  } catch (err) {
    letGo()
    throw notOurs(holderPath, err)
  }
  return async () => {
    await rm(holderPath, { force: true })
    letGo()
  }
}

/** Opens one of the lock's files: never through a link, never waiting on a FIFO, and only a plain file. */
async function openPlain (path: string, flags: number): Promise<FileHandle> {
  const file = await open(path, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o666)
  if ((await file.stat()).isFile()) return file
  await file.close()
  throw new Error('not a plain file')
}

function notOurs (path: string, err: unknown): RunDirectoryError {
  const why = (err as NodeJS.ErrnoException).code === 'ELOOP' ? 'a link' : (err as Error).message
  return new RunDirectoryError(`cannot take ${path} (${why}): it must be a plain file this process can write; if it is not Conclave's, move it away, then run again`, { cause: err })
}

const inodeKey = (info: Stats): string => `${info.dev}:${info.ino}`

function inUse (dir: string, holder: number | undefined): RunDirectoryError {
  const who = holder === process.pid ? 'this process' : holder === undefined ? 'another process' : `process ${holder}`
  return new RunDirectoryError(`${dir} is in use: ${who} is running in it (it holds ${LOCK_FILE}); wait for it to end or stop it, then run again`)
}

/** The process id the holder wrote beside the lock, if it did yet. */
async function holderOf (path: string): Promise<number | undefined> {
  const file = await openPlain(path, constants.O_RDONLY).catch(() => undefined)
  const text = await file?.readFile('utf8').catch(() => '').finally(() => file.close())
  const pid = Number.parseInt(text ?? '', 10)
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}
