import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { AlteredFileError, ConclaveError, ConfigError, ContentMismatchError, EmptyLedgerError, HeadMismatchError, LedgerBehindError, LedgerCorruptError, LedgerDivergedError, StrayFileError } from '../core/errors.ts'
import { failureAfter, replay, type AuditReport } from '../federation/audit.ts'
import { sha256Hex } from '../federation/content.ts'
import { checkHeadFile, HEAD_FILE, headId, ledgerHead, type HeadReport } from '../federation/head.ts'
import { compareManifest, MANIFEST_FILE, parseManifest, readManifestBytes, SEALED_FOLDERS, takeManifest } from '../federation/manifest.ts'
import { openLedgerDir, type Block, type Ledger } from '../ledger/index.ts'
import { createHeliaStore, verifyStoreDir } from '../storage/helia.ts'
import { createKuboStore } from '../storage/kubo.ts'

export interface AuditRunOptions {
  /** The head id the ledger must have: kept from the end of the run (`conclave run` prints it). */
  head?: string
  /** Another copy of the same run (another member's directory): both ledgers must hold the same blocks. */
  against?: string
  /**
   * The kubo node (RPC URL) that holds the run's content, for a member's directory of a
   * federation across machines: replayed against it, with only `ledger/` in the directory.
   */
  kubo?: string
}

/** What `conclave audit DIR` reports: the replay, and the head the ledger and files make (null when the replay failed first). */
export type RunAuditReport = AuditReport & { head: HeadReport | null }

type Failure = NonNullable<AuditReport['firstFailure']>

/**
 * Audits a run directory of the embedded engines, changing no byte of it: `DIR/ledger/`
 * (a member's copy of a replicated ledger, or the tangle) and `DIR/store/` are opened
 * read-only. Integrity: the ledger is replayed from its charter (audit.ts). Completeness:
 * every file and folder under `ledger/` and `store/` is the one `manifest.json` lists,
 * every block in the store hashes to its name, and `head.json` holds the head the ledger
 * and the manifest make, signed by members. A head id kept elsewhere (`head`), or another
 * copy (`against`), catches a suffix dropped by someone who could also re-sign.
 */
export async function auditRunDir (dir: string, options: AuditRunOptions = {}): Promise<RunAuditReport> {
  try {
    return await auditDir(dir, options)
  } catch (err) {
    // A file the audit cannot read as a run writes it (a folder where the ledger file was): a failed audit, reported like the others.
    const code = (err as NodeJS.ErrnoException).code
    if (typeof code !== 'string' || err instanceof ConclaveError) throw err
    return failed(emptyReport(), failureAfter(0, new AlteredFileError(`${(err as NodeJS.ErrnoException).path ?? dir} cannot be read as a run writes it (${code})`)), null)
  }
}

async function auditDir (dir: string, options: AuditRunOptions): Promise<RunAuditReport> {
  const sealed = SEALED_FOLDERS.filter(part => part !== 'store' || options.kubo === undefined)
  for (const part of sealed) {
    if (!await exists(join(dir, part))) throw new ConfigError(`${dir} is not a Conclave run directory: it has no ${part}/`)
  }
  const unread = await notPlain(dir, sealed)
  if (unread !== undefined) return failed(emptyReport(), failureAfter(0, unread), null)
  const ledger = await openOrEmpty(join(dir, 'ledger'))
  if (ledger instanceof ConclaveError) return failed(emptyReport(), failureAfter(0, ledger), null)
  const store = options.kubo === undefined ? await createHeliaStore({ dir: join(dir, 'store'), readOnly: true }) : createKuboStore({ url: options.kubo })
  try {
    const { report, charter } = await replay(ledger, store)
    if (!report.ok || charter === undefined || report.modelHash === null) return { ...report, head: null }
    const blocks = await all(ledger)
    const at = (err: ConclaveError): Failure => failureAfter(report.records, err)
    let manifestBytes: Buffer
    try {
      manifestBytes = await readManifestBytes(dir)
    } catch (err) {
      if (err instanceof ConclaveError) return failed(report, at(err), null)
      throw err
    }
    const head = ledgerHead(blocks, { federation: charter.federation, model: report.modelHash, manifest: sha256Hex(manifestBytes) })
    const id = headId(head)
    const unsigned: HeadReport = { id, ...head, signedBy: [] }
    try {
      if (options.head !== undefined && options.head !== id) throw new HeadMismatchError(`the ledger's head is ${id}, not ${options.head}`)
      const apart = options.against === undefined ? undefined : await compareCopies(dir, blocks, options.against)
      if (apart !== undefined) return failed(report, apart, unsigned)
      const found = await takeManifest(dir)
      const missing = compareManifest(parseManifest(manifestBytes), found)
      if (missing !== undefined) throw missing
      // Content on kubo is checked as the replay reads it: every model and update against its signed hash.
      // The store's block files were just read and hashed for the manifest: not read again.
      const taken = new Map(found.files.filter(f => f.path.startsWith('store/')).map(f => [f.path.slice('store/'.length), f.sha256]))
      const corrupt = options.kubo === undefined ? await verifyStoreDir(join(dir, 'store'), { sha256: taken }) : []
      if (corrupt.length > 0) throw new ContentMismatchError(`store blocks ${corrupt.join(', ')} do not hash to their CIDs`)
      const signedBy = await checkHeadFile(dir, head, new Set(charter.members))
      return { ...report, head: { ...unsigned, signedBy } }
    } catch (err) {
      if (err instanceof ConclaveError) return failed(report, at(err), unsigned)
      throw err
    }
  } finally {
    await ledger.close()
    await store.close()
  }
}

/**
 * Where another copy of the ledger parts from this one: the first block that differs, or,
 * when one copy is a strict prefix of the other, the first block the shorter one lacks.
 */
async function compareCopies (dir: string, mine: readonly Block[], otherDir: string): Promise<Failure | undefined> {
  const unread = await lstat(join(otherDir, 'ledger')).then(() => notPlain(otherDir, ['ledger']), () => undefined)
  if (unread !== undefined) return failureAfter(0, new StrayFileError(`in the copy in ${otherDir}: ${unread.message}`))
  const other = await openOrEmpty(join(otherDir, 'ledger'))
  if (other instanceof LedgerCorruptError) return failureAfter(0, new LedgerCorruptError(`the copy in ${otherDir}: ${other.message}`, { cause: other }))
  let theirs: Block[] = []
  if (!(other instanceof EmptyLedgerError)) {
    try {
      const checked = await other.verify()
      if (!checked.ok) return failureAfter(checked.failure.seq, new LedgerCorruptError(`the copy in ${otherDir} is damaged at block ${checked.failure.seq}: ${checked.failure.error.message}`), checked.failure.id)
      theirs = await all(other)
    } finally {
      await other.close()
    }
  }
  const at = (seq: number, block: Block | undefined, err: ConclaveError): Failure => failureAfter(seq, err, block?.id)
  const common = Math.min(mine.length, theirs.length)
  for (let seq = 0; seq < common; seq++) {
    if (mine[seq]?.id !== theirs[seq]?.id) {
      return at(seq, mine[seq], new LedgerDivergedError(`block ${seq} is ${mine[seq]?.id} in ${dir} but ${theirs[seq]?.id} in ${otherDir}: the copies part ways`))
    }
  }
  if (mine.length < theirs.length) return at(mine.length, theirs[mine.length], new LedgerBehindError(`${dir} is behind ${otherDir} by ${theirs.length - mine.length} blocks (${mine.length} of ${theirs.length})`))
  if (theirs.length < mine.length) return at(theirs.length, mine[theirs.length], new LedgerBehindError(`${otherDir} is behind ${dir} by ${mine.length - theirs.length} blocks (${theirs.length} of ${mine.length})`))
  return undefined
}

/** The ledger in `dir`, or why there is none to audit: empty, or its file no block file (a folder, say). */
async function openOrEmpty (dir: string): Promise<Ledger | EmptyLedgerError | LedgerCorruptError> {
  try {
    return await openLedgerDir(dir)
  } catch (err) {
    if (err instanceof EmptyLedgerError || err instanceof LedgerCorruptError) return err
    throw err
  }
}

function failed (report: AuditReport, firstFailure: Failure, head: HeadReport | null): RunAuditReport {
  return { ...report, ok: false, modelHash: null, firstFailure, head }
}

function emptyReport (): AuditReport {
  return { ok: false, records: 0, proposals: 0, votes: 0, humanVotes: 0, humanVotesCounted: false, humanVotesUncounted: [], decisions: 0, checkpoints: 0, modelHash: null, votesReplayed: false, firstFailure: null, rejected: [] }
}

async function all (ledger: Ledger): Promise<Block[]> {
  const blocks: Block[] = []
  for await (const block of ledger.blocks()) blocks.push(block)
  return blocks
}

async function exists (path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false)
}

/**
 * The first thing the audit would read that is not a plain file or folder a run made: a link
 * (to /dev/zero, it would fill memory; to a folder elsewhere, it would vouch for that), a
 * FIFO (the read would never end), a socket or a device. Found before anything is opened.
 */
async function notPlain (dir: string, sealed: readonly string[]): Promise<StrayFileError | undefined> {
  for (const part of sealed) {
    if (!(await lstat(join(dir, part))).isDirectory()) return new StrayFileError(`${part}/ is not a folder (a link, or a file): the audit reads only what a run made`)
    for (const e of await readdir(join(dir, part), { withFileTypes: true, recursive: true })) {
      if (!e.isFile() && !e.isDirectory()) return new StrayFileError(`${join(e.parentPath, e.name).slice(dir.length + 1)} is not a plain file or folder (a link, a FIFO, a socket or a device): the audit reads only what a run made`)
    }
  }
  for (const file of [MANIFEST_FILE, HEAD_FILE]) {
    const kind = await lstat(join(dir, file)).catch(() => undefined)
    if (kind !== undefined && !kind.isFile()) return new StrayFileError(`${file} is not a plain file: the audit reads only what a run made`)
  }
  return undefined
}
