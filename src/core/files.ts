import { constants } from 'node:fs'
import { mkdir, open, readFile, realpath, rename, rm, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { type ConclaveError, PayloadTooLargeError, StrayFileError } from './errors.ts'

/**
 * Where an absolute `path` leads, links followed, though its end may not exist yet: the real
 * path of its nearest existing ancestor, with the rest joined on.
 */
export async function realPathNear (path: string): Promise<string> {
  try {
    return await realpath(path)
  } catch (err) {
    const parent = dirname(path)
    // Not there yet, or below a file: what is written there later fails, and says so.
    if (!['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '') || parent === path) throw err
    return join(await realPathNear(parent), basename(path))
  }
}

/** A file's bytes, or undefined when it does not exist (any other error is thrown). */
export async function readIfExists (path: string): Promise<Buffer | undefined> {
  return readFile(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw err
  })
}

/**
 * A plain file's bytes, at most `maxBytes`; undefined where nothing is at `path`. Anything
 * else there (a FIFO, a device, a link, a folder) is a StrayFileError and a larger file a
 * PayloadTooLargeError: a directory others may write into must neither hang its reader (a
 * FIFO opened to read waits for a writer) nor fill its memory (found red-teaming).
 */
export async function readPlainFile (path: string, maxBytes: number): Promise<Buffer | undefined> {
  const handle = await openPlainFile(path, constants.O_RDONLY)
  if (handle === undefined) return undefined
  try {
    const { size } = await handle.stat()
    // Refused by its size before a byte is read; one byte more is read to see a file grown since.
    if (size > maxBytes) throw new PayloadTooLargeError(`${path} is larger than ${maxBytes} bytes`)
    const bytes = Buffer.alloc(size + 1)
    let read = 0
    for (let n = -1; n !== 0 && read < bytes.length;) read += n = (await handle.read(bytes, read, bytes.length - read, read)).bytesRead
    if (read > maxBytes) throw new PayloadTooLargeError(`${path} is larger than ${maxBytes} bytes`)
    return bytes.subarray(0, read)
  } finally {
    await handle.close()
  }
}

/**
 * A stream's bytes, at most `maxBytes`: past them a PayloadTooLargeError naming `what`, and
 * nothing more read (a pipe need never end, and buffered whole it would fill memory).
 */
export async function readStreamCapped (source: AsyncIterable<Uint8Array>, maxBytes: number, what: string): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of source) {
    size += chunk.length
    if (size > maxBytes) throw new PayloadTooLargeError(`${what} is larger than ${maxBytes} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

/** How a file Conclave wrote is named when something else is found in its place (readOwnFile). */
export interface OwnFile {
  /** What the file is, as in "`path` is not …" (`the pause this agent wrote`). */
  is: string
  /** The error that names the file found otherwise. */
  error: new (message: string, options?: ErrorOptions) => ConclaveError
  /** Most bytes it may take; read whole where there is no natural bound (a ledger, a log). */
  maxBytes?: number
  /** What moving it away does, after "move it away" (` to unpause`). */
  then?: string
}

/**
 * A file Conclave wrote, read back as a plain file (readPlainFile, or readPlainFileWhole without
 * `maxBytes`): a link, a FIFO, a folder or a larger file in its place is `file.error`, naming it
 * and saying to move it away; undefined where nothing is there.
 */
export async function readOwnFile (path: string, file: OwnFile): Promise<Buffer | undefined> {
  try {
    return file.maxBytes === undefined ? await readPlainFileWhole(path) : await readPlainFile(path, file.maxBytes)
  } catch (err) {
    if (err instanceof StrayFileError || err instanceof PayloadTooLargeError) throw new file.error(`${path} is not ${file.is} (${err.message}): move it away${file.then ?? ''}`, { cause: err })
    throw err
  }
}

/**
 * Opens a plain file with `flags` (O_NOFOLLOW and O_NONBLOCK added); undefined where nothing
 * is at `path` and `flags` do not create it. A link, a FIFO, a device or a folder there is a
 * StrayFileError naming it, at once: neither waited on nor followed. For files that may be
 * large (a ledger, a log), which are read whole through the handle with no cap.
 */
export async function openPlainFile (path: string, flags: number, mode?: number): Promise<FileHandle | undefined> {
  let handle: FileHandle
  try {
    handle = await open(path, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK, mode)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' && (flags & constants.O_CREAT) === 0) return undefined
    if (code === 'ELOOP') throw new StrayFileError(`${path} is a link, not a file`, { cause: err })
    if (code === 'EISDIR') throw new StrayFileError(`${path} is a folder, not a file`, { cause: err })
    // A socket (or a device with nothing behind it) refuses to be opened at all; so does a FIFO
    // with no reader opened to write without blocking (appendSynced).
    if (code === 'ENXIO' || code === 'ENODEV') throw new StrayFileError(`${path} is not a plain file`, { cause: err })
    throw err
  }
  const info = await handle.stat().catch(async (err: unknown) => { await handle.close(); throw err })
  if (!info.isFile()) {
    await handle.close()
    throw new StrayFileError(`${path} is not a plain file`)
  }
  return handle
}

/** A plain file's bytes, whatever its size (see openPlainFile); undefined where nothing is at `path`. */
export async function readPlainFileWhole (path: string): Promise<Buffer | undefined> {
  const handle = await openPlainFile(path, constants.O_RDONLY)
  if (handle === undefined) return undefined
  try {
    return await readFromStart(handle)
  } finally {
    await handle.close()
  }
}

/** An open file's bytes from its start to its end (positioned reads: the handle's own offset is left as it is). */
export async function readFromStart (handle: FileHandle): Promise<Buffer> {
  // One byte more than its size now, so a file grown since shows, and is read on.
  let bytes = Buffer.alloc((await handle.stat()).size + 1)
  let at = 0
  for (;;) {
    if (at === bytes.length) bytes = Buffer.concat([bytes, Buffer.alloc(bytes.length)])
    const { bytesRead } = await handle.read(bytes, at, bytes.length - at, at)
    if (bytesRead === 0) return bytes.subarray(0, at)
    at += bytesRead
  }
}

/**
 * The half-written copy is always a new file: whatever name is there first (a copy a crash
 * left, or a link someone planted, symbolic or hard) is unlinked, which removes only the name,
 * and O_EXCL makes the file anew (found red-teaming: O_TRUNC wrote through a hard link there).
 */
async function freshFile (tmp: string, mode?: number): Promise<FileHandle> {
  await rm(tmp, { force: true })
  return open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode)
}

/**
 * Replaces a small state file so that a crash leaves the old version or the new one, never
 * half of one: write beside it, then rename over it. `sync` also makes the new version
 * durable before this resolves (the file, then its directory entry), so a later write that
 * depends on it cannot reach the disk first.
 */
export async function writeAtomic (path: string, data: string | Uint8Array, options: { mode?: number, sync?: boolean } = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  const tmp = `${path}.tmp`
  const file = await freshFile(tmp, options.mode)
  try {
    await file.writeFile(data)
    if (options.sync === true) await file.sync()
  } finally {
    await file.close()
  }
  await rename(tmp, path)
  if (options.sync === true) await syncDir(dirname(path))
}

/**
 * Appends `data` to the plain file at `path`, made (with `mode`) where there is none, and resolves
 * once it is on the disk (a datasync); `named` also syncs the directory entry, for a file this
 * append may have created. A link, a FIFO, a device or a folder there is a StrayFileError naming
 * it (see openPlainFile): neither followed nor waited on.
 */
export async function appendSynced (path: string, data: string | Uint8Array, options: { named?: boolean, mode?: number } = {}): Promise<void> {
  const file = await openPlainFile(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, options.mode) as FileHandle
  try {
    await file.appendFile(data)
    await file.datasync()
  } finally {
    await file.close()
  }
  if (options.named === true) await syncDir(dirname(path))
}

/** Makes a new file's directory entry durable (best effort where directories cannot be opened). */
export async function syncDir (dir: string): Promise<void> {
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
