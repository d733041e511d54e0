import { isUtf8 } from 'node:buffer'
import { realpath } from 'node:fs/promises'
import { readPlainFile } from '../core/files.ts'
import { DatasetError, PayloadTooLargeError, StrayFileError } from '../core/errors.ts'

/**
 * The most bytes one dataset file may hold: 256 MiB, about 45 times the largest bundled file
 * (OHSUMED-23's test.jsonl, 5.5 MB), yet a fraction of V8's longest string (~512 Mi chars), so
 * a file within it always decodes (a larger one failed with a bare "Invalid string length").
 */
export const MAX_DATASET_FILE_BYTES = 256 * 1024 * 1024
/**
 * The most characters one line of a dataset file may hold: 1 Mi, far above any bundled line
 * (4.5 k chars) and above the longest row the schemas allow, JSON-escaped.
 */
export const MAX_DATASET_LINE_CHARS = 1024 * 1024

/** Caps on one dataset file; tests lower them. */
export interface DatasetFileLimits {
  /** @default MAX_DATASET_FILE_BYTES */
  maxBytes?: number
  /** @default MAX_DATASET_LINE_CHARS */
  maxLineChars?: number
}

/**
 * A dataset file's text, or undefined where nothing is at `path`. A link is followed to its
 * target (users link datasets in), but the target must be a plain file: a FIFO would hang the
 * reader and a device fill its memory. A file over `maxBytes` is refused before it is read,
 * and one that is not UTF-8 rather than decoded with U+FFFD in place of its bad bytes; a
 * leading byte order mark is dropped.
 * Every refusal is a DatasetError naming `path` (and, for bad UTF-8, the line).
 */
export async function readDatasetText (path: string, limits: DatasetFileLimits = {}): Promise<string | undefined> {
  const maxBytes = limits.maxBytes ?? MAX_DATASET_FILE_BYTES
  let bytes: Buffer | undefined
  try {
    bytes = await readPlainFile(await realpath(path), maxBytes)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    if (err instanceof PayloadTooLargeError) throw new DatasetError(`${path} is too large: a dataset file may hold at most ${maxBytes} bytes (${(maxBytes / 2 ** 20).toFixed(0)} MiB)`, { cause: err })
    if (err instanceof StrayFileError) throw new DatasetError(`${path} is not a plain file (a FIFO, a device or a folder?)`, { cause: err })
    throw new DatasetError(`cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
  if (bytes === undefined) return undefined
  return decodeUtf8(path, bytes)
}

/** Strict UTF-8; a byte order mark at the start (some editors write one) is dropped, not text. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })

function decodeUtf8 (path: string, bytes: Buffer): string {
  try {
    return utf8.decode(bytes)
  } catch (err) {
    // Only on failure: find the line. A newline byte never sits inside a UTF-8 sequence.
    let line = 1
    for (let start = 0; start <= bytes.length; line++) {
      const end = bytes.indexOf(0x0a, start)
      const stop = end === -1 ? bytes.length : end
      if (!isUtf8(bytes.subarray(start, stop))) break
      start = stop + 1
    }
    throw new DatasetError(`${path}:${line}: not valid UTF-8`, { cause: err })
  }
}

/**
 * A dataset file's lines (line n is at index n − 1, CR of CRLF kept), read as
 * `readDatasetText` does; a missing file, or a line over `maxLineChars`, is a DatasetError
 * naming the file (and the line).
 */
export async function readDatasetLines (path: string, limits: DatasetFileLimits = {}): Promise<string[]> {
  const text = await readDatasetText(path, limits)
  if (text === undefined) throw new DatasetError(`cannot read ${path}: no such file`)
  const maxLineChars = limits.maxLineChars ?? MAX_DATASET_LINE_CHARS
  const lines = text.split('\n')
  const long = lines.findIndex(line => line.length > maxLineChars)
  if (long !== -1) throw new DatasetError(`${path}:${long + 1}: line is too long: ${lines[long]?.length} characters, at most ${maxLineChars} allowed`)
  return lines
}
