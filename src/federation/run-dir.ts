import { lstat, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join, relative, resolve, sep } from 'node:path'
import { z } from 'zod'
import { RunDirectoryError } from '../core/errors.ts'
import { readPlainFile, writeAtomic } from '../core/files.ts'
import { Sha256Hex } from '../core/records.ts'
import { parseConfigText, parseRunConfig, type RunConfig } from './config.ts'
import { sha256Hex } from './content.ts'
import { LOCK_FILE, LOCK_HOLDER_FILE } from './dir-lock.ts'
import { HEAD_FILE } from './head.ts'
import { MANIFEST_FILE } from './manifest.ts'
import { runWrites } from './run-layout.ts'

/**
 * The file that says "a Conclave run made this directory". It is written before anything
 * else, so a run killed at any moment leaves a directory that `--force` may replace.
 */
export const RUN_MARKER = '.conclave-run'

/**
 * Everything a run writes at the top of its directory (besides the marker). `--force`
 * removes these and nothing else; a directory holding anything more, at the top or inside
 * these folders (run-layout.ts), is refused.
 */
/**
 * What a run writes at the top whose content its marker does not name: the half-written
 * copies a run killed as it sealed the directory or noted a file leaves, and config.json,
 * which a run started again reads (`--config DIR/config.json`) and writes anew. (Its lock,
 * dir-lock.ts, is not the run's content: `--force` leaves it, held by the run that replaces.)
 */
const RUN_REPORTS: readonly string[] = ['report.json', 'report.md', 'learning-curve.svg', 'votes.svg', 'reputation.svg']
const RUN_UNNOTED: readonly string[] = ['config.json', ...[RUN_MARKER, MANIFEST_FILE, HEAD_FILE, ...RUN_REPORTS].map(name => `${name}.tmp`)]
const RUN_FOLDERS: readonly string[] = ['ledger', 'store', 'keys', 'agents']
export const RUN_ENTRIES: readonly string[] = [...RUN_FOLDERS, ...RUN_REPORTS, MANIFEST_FILE, HEAD_FILE, ...RUN_UNNOTED]

/** What Conclave makes a directory for: a run (`conclave run`), a model taken out of one (`conclave export`), or a member's state (`conclave agent`). */
export interface DirOwner {
  kind: 'run' | 'export' | 'member'
  /** The marker file, written first. */
  marker: string
  /** Everything it writes at the top of its directory (besides the marker): what `force` removes. */
  entries: readonly string[]
  /** Those of its files whose content its marker does not name (`noteWritten`): `force` removes them by name. */
  unnoted: readonly string[]
  /** Those of its entries it writes as folders, and what it writes inside them; without it, it writes no folder. */
  folders?: OwnFolders
}

export interface OwnFolders {
  names: readonly string[]
  /** Whether it writes a path inside one of them (`/`-separated, from the directory), a folder when `folder`. */
  writes: (path: string, folder: boolean) => boolean
}

export const RUN_OWNER: DirOwner = { kind: 'run', marker: RUN_MARKER, entries: RUN_ENTRIES, unnoted: RUN_UNNOTED, folders: { names: RUN_FOLDERS, writes: runWrites } }

/**
 * What a member (`conclave agent`) writes at the top of its dir, which may be a folder of the
 * user's: its report and seal (replaced whole), their half-written copies, and the folders of its
 * ledger copy, store and agent (README, "Run a federation across machines"). What is inside those
 * folders is its own by name, as its sync token is, but for a link or other special file: written
 * into, it would have the member write through it (found red-teaming: a ledger/ made a link to
 * someone's folder had the ledger copy written there).
 */
const MEMBER_FILES: readonly string[] = ['report.json', MANIFEST_FILE, HEAD_FILE]
const MEMBER_UNNOTED: readonly string[] = MEMBER_FILES.map(name => `${name}.tmp`)
const MEMBER_FOLDERS: OwnFolders = { names: ['ledger', 'store', 'agents'], writes: () => true }
export const MEMBER_OWNER: DirOwner = { kind: 'member', marker: '.conclave-member', entries: [...MEMBER_FILES, ...MEMBER_UNNOTED, ...MEMBER_FOLDERS.names], unnoted: MEMBER_UNNOTED, folders: MEMBER_FOLDERS }

const Marker = z.object({
  conclave: z.enum(['run', 'export', 'member']),
  /** 2 names the files it wrote (`files`); 1 came before, and is taken by names alone. */
  version: z.union([z.literal(1), z.literal(2)]),
  /** A run's config.json as it began (sha-256): --resume continues that run, not one with other settings. */
  config: Sha256Hex.optional(),
  /**
   * Each file it wrote at the top of the directory, as it wrote it (sha-256): `--force` removes
   * a file there only as it was written, never one changed since or put there under its name.
   * Absent from markers made before it, which are taken by names alone.
   */
  files: z.record(z.string().min(1).max(255), Sha256Hex).optional()
}).strict()
type Marker = z.infer<typeof Marker>
/** A marker names a run's dozen top-level files; anything near this is not one. */
const MAX_MARKER_BYTES = 64 * 1024

/** The marker's text: who made the directory, for a run what its config.json held as it began, and the files it wrote. */
function markerText (marker: Marker): string {
  return JSON.stringify(marker) + '\n'
}

/** Records in the marker what `config.json` holds as the run begins, so that a resume can tell it was not changed since. */
export async function markRunConfig (dir: string): Promise<void> {
  const marker = await assertKnownMarker(dir, RUN_OWNER)
  await writeAtomic(join(dir, RUN_MARKER), markerText({ ...marker, config: await configHash(dir) }))
}

/**
 * Records in the owner's marker the files `names` (at the top of `dir`) as they are now, just
 * written by it. Nothing where the directory has no marker (a member's own directory) or one
 * from before markers named files.
 */
export async function noteWritten (dir: string, owner: DirOwner, names: readonly string[]): Promise<void> {
  const marker = await markerOf(dir, owner)
  if (marker?.files === undefined) return
  const files = { ...marker.files }
  for (const name of names) files[name] = sha256Hex(await readFile(join(dir, name)))
  await writeAtomic(join(dir, owner.marker), markerText({ ...marker, files }))
}

async function configHash (dir: string): Promise<string> {
  return sha256Hex(await runConfigBytes(dir))
}

/** A run directory's config.json: a plain file of at most 1 MiB (a FIFO or a link planted there is refused, not read). */
export async function runConfigBytes (dir: string): Promise<Buffer> {
  const bytes = await readPlainFile(join(dir, 'config.json'), 1024 * 1024)
  if (bytes === undefined) throw new RunDirectoryError(`${dir} has no config.json`)
  return bytes
}

/** The settings a run directory's config.json holds (runConfigBytes), parsed. */
export async function runConfigIn (dir: string): Promise<RunConfig> {
  return parseRunConfig(parseConfigText((await runConfigBytes(dir)).toString('utf8'), join(dir, 'config.json')))
}

/**
 * Makes `dir` ready for a new run: creates it (or takes it empty) and marks it. A directory
 * that holds an earlier run is emptied of what that run wrote when `force` is given;
 * anything else in it is never touched: the run is refused and the error says what to do.
 */
export async function prepareRunDir (dir: string, options: { force?: boolean, configFile?: string } = {}): Promise<void> {
  await prepareOwnedDir(dir, RUN_OWNER, options)
}

/** prepareRunDir for any owner: a directory this owner did not mark is never written into. */
export async function prepareOwnedDir (dir: string, owner: DirOwner, options: { force?: boolean, configFile?: string } = {}): Promise<void> {
  const written = await assertPreparable(dir, owner, options)
  if (written === undefined) {
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, owner.marker), markerText(freshMarker(owner)))
    return
  }
  for (const entry of written) await rm(join(dir, entry), { recursive: true, force: true })
  // What it writes next is noted in a marker of today's format, whatever the earlier one was.
  await writeAtomic(join(dir, owner.marker), markerText(freshMarker(owner)))
}

/**
 * Refuses, reading only, what prepareOwnedDir would refuse, so that a caller can check before
 * work that may fail (an export) as well as under it. Returns what it would remove, or
 * undefined where nothing is there (no directory, or an empty one).
 */
export async function assertPreparable (dir: string, owner: DirOwner, options: { force?: boolean, configFile?: string } = {}): Promise<string[] | undefined> {
  const entries = await assertTakeable(dir, owner)
  if (entries.length === 0) return undefined
  const marker = await assertKnownMarker(dir, owner)
  const written = entries.filter(e => e !== owner.marker)
  assertNoUnknown(dir, owner, written)
  if (written.length > 0 && options.force !== true) throw new RunDirectoryError(`${dir} holds an earlier ${owner.kind}; pass --force to replace it, or choose another --out`)
  // Everything is looked at before anything is removed, so a refusal leaves the directory as it was.
  // The new run's settings were read from the earlier run's config.json (`--config DIR/config.json`): it writes them anew.
  const rerun = options.configFile !== undefined && resolve(options.configFile) === resolve(dir, 'config.json')
  await assertAsWritten(dir, owner, written, marker, rerun)
  return written
}

/** Refuses the entries at the top of `dir` (its marker aside) where one is a name its owner never writes there. */
function assertNoUnknown (dir: string, owner: DirOwner, written: readonly string[]): void {
  const unknown = written.filter(e => !owner.entries.includes(e))
  if (unknown.length > 0) {
    throw new RunDirectoryError(`${dir} holds an earlier ${owner.kind}, and also ${unknown.map(e => `"${e}"`).join(', ')}, which no ${owner.kind} made; move ${unknown.length === 1 ? 'it' : 'them'} away, then ${owner.kind} again`)
  }
}

/** Refuses, reading only, entries its owner did not write as they are: a file changed since (or put there), or a stray (assertNoStrays). */
async function assertAsWritten (dir: string, owner: DirOwner, written: readonly string[], marker: Marker, rerun: boolean): Promise<void> {
  const changed = await changedFiles(dir, written, owner, marker, rerun)
  if (changed.length > 0) {
    const edited = changed.includes('config.json') ? ' (to run the settings of an edited config.json, pass it as --config)' : ''
    throw new RunDirectoryError(`${dir} holds an earlier ${owner.kind}, and ${changed.map(e => `"${e}"`).join(', ')}, which it did not write as ${changed.length === 1 ? 'it is' : 'they are'} now (changed since, or put there; a ${owner.kind} killed as it wrote one leaves one too); move ${changed.length === 1 ? 'it' : 'them'} away, then ${owner.kind} again${edited}`)
  }
  await assertNoStrays(dir, owner, written)
}

/** Refuses, reading only, entries that are a link or another special file, or folders holding one or a path the owner never writes. */
async function assertNoStrays (dir: string, owner: DirOwner, written: readonly string[]): Promise<void> {
  const strays = (await Promise.all(written.map(async entry => strayPaths(dir, entry, owner)))).flat().sort()
  if (strays.length > 0) {
    const named = strays.slice(0, 5).map(p => `"${p}"`).join(', ') + (strays.length > 5 ? ` and ${strays.length - 5} more` : '')
    throw new RunDirectoryError(`${dir} holds an earlier ${owner.kind}, and inside its folders ${named}, which no ${owner.kind} made; move ${strays.length === 1 ? 'it' : 'them'} away, then ${owner.kind} again`)
  }
}

/**
 * Refuses, reading only, a directory the owner may not take: one that is not empty (but for a
 * run's lock, dir-lock.ts) and has no marker of the owner's, or one of another format. Returns
 * its entries, less a run's lock.
 */
export async function assertTakeable (dir: string, owner: DirOwner): Promise<string[]> {
  const entries = await ownEntries(dir, owner)
  if (entries.length === 0) return entries
  if (!entries.includes(owner.marker)) {
    throw new RunDirectoryError(`${dir} is not empty and has no ${owner.marker} marker, so nothing says a Conclave ${owner.kind} made it${owner.kind === 'run' ? ' (a run from before the marker has none either)' : ''}: choose another --out, or empty it yourself`)
  }
  await assertKnownMarker(dir, owner)
  return entries
}

/** The marker of a directory an owner has just taken: it names no file yet. */
function freshMarker (owner: DirOwner): Marker {
  return { conclave: owner.kind, version: 2, files: {} }
}

/**
 * The files at the top of `dir` the marker does not name as they are: changed since they were
 * written, or never written by the owner; not those it does not note (`unnoted`), but a run's
 * config.json, which the marker notes apart, as the run began (markRunConfig): changed since,
 * it holds someone's edits. None for a marker from before markers named files.
 */
async function changedFiles (dir: string, entries: readonly string[], owner: DirOwner, marker: Marker, rerun: boolean): Promise<string[]> {
  const { files } = marker
  if (files === undefined) return []
  const changed: string[] = []
  for (const entry of entries) {
    if (!(await lstat(join(dir, entry))).isFile()) continue
    const config = owner.kind === 'run' && entry === 'config.json'
    if (config ? rerun || marker.config === undefined : owner.unnoted.includes(entry)) continue
    if ((config ? marker.config : files[entry]) !== sha256Hex(await readFile(join(dir, entry)))) changed.push(entry)
  }
  return changed.sort()
}

/**
 * What under a top-level entry its owner did not write: a link or other special file, a file
 * where it writes a folder (or a folder where it writes a file), or a path it never writes.
 */
async function strayPaths (dir: string, entry: string, owner: DirOwner): Promise<string[]> {
  const info = await lstat(join(dir, entry))
  const folders = owner.folders?.names.includes(entry) === true ? owner.folders : undefined
  if (folders === undefined) return info.isFile() ? [] : [entry]
  if (!info.isDirectory()) return [entry]
  const strays: string[] = []
  for (const e of await readdir(join(dir, entry), { withFileTypes: true, recursive: true })) {
    const path = relative(dir, join(e.parentPath, e.name)).split(sep).join('/')
    if (!((e.isFile() || e.isDirectory()) && folders.writes(path, e.isDirectory()))) strays.push(path)
  }
  return strays
}

/** A directory's entries, less a run's lock (dir-lock.ts), which is not the run's content. */
async function ownEntries (dir: string, owner: DirOwner): Promise<string[]> {
  return (await entriesOf(dir) ?? []).filter(e => owner.kind !== 'run' || (e !== LOCK_FILE && e !== LOCK_HOLDER_FILE))
}

/** Refuses to resume a directory that holds no run: a run made it (its marker) and its config and ledger are there. */
export async function assertResumable (dir: string): Promise<void> {
  const entries = await entriesOf(dir) ?? []
  const missing = [RUN_MARKER, 'config.json', 'ledger'].filter(e => !entries.includes(e))
  // A run killed in its first seconds has its marker and config but no ledger yet: nothing to continue, so start it again.
  const unstarted = missing.length === 1 && missing[0] === 'ledger'
  if (missing.length > 0) throw new RunDirectoryError(`${dir} holds no run to resume: it has no ${missing.join(', ')}${unstarted ? '; it was stopped before its first record: run it again with --config DIR/config.json --out DIR --force' : ''}`)
  const { config } = await assertKnownMarker(dir, RUN_OWNER)
  if (config !== undefined && config !== await configHash(dir)) {
    throw new RunDirectoryError(`${dir}/config.json changed since the run began: a resume continues the run with the settings it began with (its first rounds ran by them); put them back, or start a new run`)
  }
}

/**
 * Refuses, reading only, to write into a run directory (a resume) that holds what its run did
 * not write: a name it never writes, a link, a FIFO, a stray path; the check `--force` makes
 * (found red-teaming: a report.md made a link to someone's file had that file overwritten).
 * A file of the run's changed since is no refusal here, unlike for `--force`: a run killed as
 * it wrote its report leaves one, and a resume replaces it whole, never writing through it.
 */
export async function assertRunOnly (dir: string): Promise<void> {
  const written = (await ownEntries(dir, RUN_OWNER)).filter(e => e !== RUN_MARKER)
  assertNoUnknown(dir, RUN_OWNER, written)
  await assertNoStrays(dir, RUN_OWNER, written)
}

/**
 * Refuses, reading only, a member's dir where a file the member replaces is not the member's:
 * any there before a member marked the folder (the user's own report.json), and in a marked one
 * a link, a FIFO or a folder under its name (found red-teaming: a report.json made a link to
 * someone's file had that file replaced by the report). Its own files, changed since or not, are
 * no refusal, as for a resume (assertRunOnly): a member replaces them whole, never writing through them.
 */
export async function assertMemberDir (dir: string): Promise<void> {
  // A member of a version before the marker left its ledger copy there: its dir too (upgraded, restarted in place).
  const marked = await markerOf(dir, MEMBER_OWNER) !== undefined || (await lstat(join(dir, 'ledger')).catch(() => undefined))?.isDirectory() === true
  const present = (await entriesOf(dir) ?? []).filter(e => MEMBER_OWNER.entries.includes(e))
  const theirs = marked ? (await Promise.all(present.map(async e => strayPaths(dir, e, MEMBER_OWNER)))).flat().sort() : present
  if (theirs.length === 0) return
  const them = theirs.length === 1 ? 'it' : 'them'
  const why = marked ? 'a link or other special file, or not a folder where the member writes one' : `there before a member marked the folder (${MEMBER_OWNER.marker})`
  throw new RunDirectoryError(`${dir} holds ${theirs.map(e => `"${e}"`).join(', ')}, which a member would write into or replace but did not make (${why}): move ${them} away, or choose another dir`)
}

/** Takes `dir` for a member: refuses what assertMemberDir refuses, then marks it, before the member writes anything else there. */
export async function takeMemberDir (dir: string): Promise<void> {
  await assertMemberDir(dir)
  if (await markerOf(dir, MEMBER_OWNER) === undefined) await writeAtomic(join(dir, MEMBER_OWNER.marker), markerText(freshMarker(MEMBER_OWNER)))
}

/**
 * Makes the folder a lobby keeps one federation's member state in (`dir/<federation>`), or takes
 * the one it made before; refused, writing nothing, where that name is a link or not a folder
 * (found red-teaming: a link planted under a federation's name had the member write its lock,
 * marker, ledger copy and store into the folder the link named).
 */
export async function makeFederationDir (dir: string): Promise<void> {
  const made = await mkdir(dir).then(() => true, (err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') return false
    throw new RunDirectoryError(`cannot make ${dir}: ${err.message}`, { cause: err })
  })
  if (made) return
  const info = await lstat(dir)
  if (!info.isDirectory()) throw new RunDirectoryError(`${dir} is ${info.isSymbolicLink() ? 'a link' : 'not a folder'}, where the lobby keeps this federation's state, and no lobby made it: move it away`)
}

/** The names in `dir`, or undefined when there is no such directory. */
async function entriesOf (dir: string): Promise<string[] | undefined> {
  const info = await stat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw new RunDirectoryError(`cannot use ${dir} as a run directory: ${err.message}`, { cause: err })
  })
  if (info === undefined) return undefined
  if (!info.isDirectory()) throw new RunDirectoryError(`${dir} is a file, not a run directory: choose another --out`)
  return readdir(dir)
}

async function assertKnownMarker (dir: string, owner: DirOwner): Promise<Marker> {
  return await markerOf(dir, owner) ?? unknownMarker(dir, owner)
}

/** The owner's marker in `dir`, or undefined when there is none; one this Conclave does not know is refused. */
async function markerOf (dir: string, owner: DirOwner): Promise<Marker | undefined> {
  // A plain file only: a FIFO planted as the marker would hang the check, a link be followed.
  const bytes = await readPlainFile(join(dir, owner.marker), MAX_MARKER_BYTES).catch(() => Buffer.alloc(0))
  if (bytes === undefined) return undefined
  let marker: unknown
  try { marker = JSON.parse(bytes.toString('utf8')) } catch { marker = undefined }
  const known = Marker.safeParse(marker)
  return known.success && known.data.conclave === owner.kind ? known.data : unknownMarker(dir, owner)
}

function unknownMarker (dir: string, owner: DirOwner): never {
  throw new RunDirectoryError(`${join(dir, owner.marker)} is not a ${owner.kind} marker this Conclave knows (format version 1 or 2); a newer Conclave may have made ${dir}: use that, or choose another --out`)
}
