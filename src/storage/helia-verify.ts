import * as cborg from 'cborg'
import { exporter } from 'ipfs-unixfs-exporter'
import { base32upper } from 'multiformats/bases/base32'
import { base36 } from 'multiformats/bases/base36'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import type { MultihashDigest } from 'multiformats/hashes/interface'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { hash } from 'node:crypto'
import { open, readdir, readFile } from 'node:fs/promises'
import { join, sep } from 'node:path'
import { mapConcurrently } from '../core/concurrently.ts'
import type { Logger } from '../core/logger.ts'
import type { AbortOptions } from '../core/options.ts'
import { BLOCK_RECORD, parsePinLog, PIN_LOG, type PinLogLine } from './pin-datastore.ts'
import { MAX_BLOCK_BYTES } from './unixfs-settings.ts'

/** Store files read at once: a store holds thousands of small ones. */
const READS_IN_FLIGHT = 32

/** One damaged thing in a store directory. */
export interface StoreDamage {
  /**
   * A damaged block file: the CIDv1, raw codec, of the multihash it is stored under
   * (blockstore-fs keys blocks by multihash, so a dag-pb root shows as `bafkrei…`; compare
   * multihashes). A block a pin needs but that is missing or damaged: its CID as linked.
   * Anything else: a `/`-separated path under the store dir.
   */
  where: string
  problem: string
}

export interface VerifyStoreOptions extends AbortOptions {
  /** Each damage found is logged as a warning. */
  logger?: Logger
  /**
   * Files' sha-256 (hex) the caller has just taken, by path under the store dir
   * (`blocks/…`): a sha2-256 block listed is checked against it rather than read again.
   */
  sha256?: ReadonlyMap<string, string>
}

/**
 * Whether `bytes` hash to `digest` (sha2-256, or identity for inline CIDs). One-shot
 * `crypto.hash`: no Hash object, no multihash built around the result.
 */
export function blockMatches (digest: MultihashDigest, bytes: Uint8Array): boolean {
  if (digest.code === sha256.code) return equals(hash('sha256', bytes, 'buffer'), digest.digest)
  if (digest.code === identity.code) return equals(bytes, digest.digest)
  return false
}

/**
 * A block file's bytes, read from the opened file once its size is known; undefined, unread,
 * when it is larger than any block the importer writes (MAX_BLOCK_BYTES): a damaged or
 * planted file of a gigabyte would otherwise be read whole before its hash refused it.
 */
export async function readBlockFile (path: string, options: AbortOptions = {}): Promise<Uint8Array | undefined> {
  options.signal?.throwIfAborted()
  const file = await open(path, 'r')
  try {
    const { size } = await file.stat()
    if (size > MAX_BLOCK_BYTES) return undefined
    const bytes = new Uint8Array(size)
    // A file that shrank since is short here and fails its hash; one that grew is read only to its size.
    const { bytesRead } = await file.read(bytes, 0, size, 0)
    options.signal?.throwIfAborted()
    return bytes.subarray(0, bytesRead)
  } finally {
    await file.close()
  }
}

/** Re-hashes every file under `dir/blocks` and returns the damaged ones (CIDs, or paths for files that are not blocks). */
export async function verifyAllBlocks (dir: string, options: VerifyStoreOptions = {}): Promise<string[]> {
  const { damage } = await inspectBlocks(dir, options)
  return report(damage, options.logger)
}

/**
 * Audit of a Helia store directory, read straight from disk (the store may be open, but
 * idle). The layout is blockstore-fs's and helia's pins':
 *
 *   blocks/<XY>/B<BASE32 multihash>.data   one block, keyed by multihash; XY = last 2 chars
 *   datastore/version.data                 "1"
 *   datastore/pin/<base36 CID>.data        cbor { depth: Infinity, metadata: {} }
 *   datastore/pinned-blocks.log            one line per block record written, in order:
 *                                          `/pinned-block/<base36 multihash> <base64url cbor { pinCount, pinnedBy: [CID bytes] }, or -> <check>`
 *   datastore/pinned-block/<base36 multihash>.data   the same record as a file (stores written before the log)
 *
 * Every file is checked byte for byte: a block must hash to the multihash its name spells
 * (so a flipped byte in its name or its body shows); a datastore value must decode and
 * re-encode to exactly its bytes, with the only shapes this store writes; each line of the
 * pin log must pass its check, which chains over the lines before it (the last line for a
 * block is its record; it replaces a file of the same block). Then the pins
 * are checked against the blocks: each pin's DAG is walked (dag-pb nodes decoded from
 * verified bytes) and every block in it must be present and have a pinned-block record
 * naming that pin, and every pinned-block record must name exactly the pins whose DAGs
 * hold it. Anything else in the directory is reported as unexpected.
 *
 * Returns what is damaged (block CIDs and store-relative paths), sorted and deduplicated;
 * `[]` when every byte checks. This is the audit's store check.
 */
export async function verifyStoreDir (dir: string, options: VerifyStoreOptions = {}): Promise<string[]> {
  return report(await inspectStoreDir(dir, options), options.logger)
}

/** `verifyStoreDir` with a reason for each damage. */
export async function inspectStoreDir (dir: string, options: VerifyStoreOptions = {}): Promise<StoreDamage[]> {
  const damage: StoreDamage[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!(entry.isDirectory() && (entry.name === 'blocks' || entry.name === 'datastore'))) damage.push({ where: entry.name, problem: 'not part of a Helia store' })
  }
  const blocks = await inspectBlocks(dir, options)
  const pins = await inspectDatastore(dir, options)
  damage.push(...blocks.damage, ...pins.damage)
  damage.push(...await checkPinnedBlocks(dir, blocks.intact, pins, options))
  return damage
}

interface BlockScan {
  damage: StoreDamage[]
  /** base32upper multihashes of the blocks that hash correctly */
  intact: Set<string>
}

async function inspectBlocks (dir: string, options: VerifyStoreOptions): Promise<BlockScan> {
  const damage: StoreDamage[] = []
  const intact = new Set<string>()
  const found = await mapConcurrently(await listTree(join(dir, 'blocks'), 'blocks'), READS_IN_FLIGHT, async ({ rel, isFile, isDir }): Promise<StoreDamage | string | undefined> => {
    options.signal?.throwIfAborted()
    const parts = rel.split('/')
    if (!isFile) {
      if (!isDir || parts.length !== 2 || !/^[A-Z2-7]{2}$/.test(parts[1] as string)) return { where: rel, problem: 'not a blockstore shard directory' }
      return undefined
    }
    const name = parts[2] ?? ''
    const stem = name.slice(0, -'.data'.length)
    const digest = parts.length === 3 && name.endsWith('.data') && stem.endsWith(parts[1] as string) ? decodeDigest(() => base32upper.decode(stem)) : undefined
    if (digest === undefined) return { where: rel, problem: 'not a block file name' }
    const where = CID.createV1(raw.code, digest).toString()
    const taken = digest.code === sha256.code ? options.sha256?.get(rel) : undefined
    if (taken !== undefined) return taken === Buffer.from(digest.digest).toString('hex') ? stem : { where, problem: `${rel} does not hash to its name` }
    const bytes = await readBlockFile(join(dir, rel), options)
    if (bytes === undefined) return { where, problem: `${rel} is larger than any block this store writes (${MAX_BLOCK_BYTES} bytes)` }
    return blockMatches(digest, bytes) ? stem : { where, problem: `${rel} does not hash to its name` }
  })
  for (const f of found) {
    if (typeof f === 'string') intact.add(f)
    else if (f !== undefined) damage.push(f)
  }
  return { damage, intact }
}

interface PinScan {
  damage: StoreDamage[]
  /** pinned CID → datastore path of its pin record */
  pins: Map<string, string>
  /** base36 multihash → the pins its pinned-block record names, and that record's path */
  records: Map<string, { pinnedBy: Set<string>, rel: string }>
}

const PIN_RECORD = cborg.encode({ depth: Infinity, metadata: {} })

async function inspectDatastore (dir: string, options: AbortOptions): Promise<PinScan> {
  const scan: PinScan = { damage: [], pins: new Map(), records: new Map() }
  let logged: { rel: string, bytes: Buffer } | undefined
  const bad = (where: string, problem: string): void => { scan.damage.push({ where, problem }) }
  const entries = await listTree(join(dir, 'datastore'), 'datastore')
  const contents = await mapConcurrently(entries, READS_IN_FLIGHT, async ({ rel, isFile }) => isFile ? readFile(join(dir, rel)) : undefined)
  for (const [i, { rel, isFile, isDir }] of entries.entries()) {
    options.signal?.throwIfAborted()
    const parts = rel.split('/')
    const bytes = contents[i]
    if (!isFile || bytes === undefined) {
      if (!isDir || parts.length !== 2 || (parts[1] !== 'pin' && parts[1] !== 'pinned-block')) bad(rel, 'not a datastore directory')
      continue
    }
    const name = (parts.at(-1) ?? '').replace(/\.data$/, '')
    if (rel === `datastore/${PIN_LOG}`) {
      logged = { rel, bytes }
    } else if (rel === 'datastore/version.data') {
      if (new TextDecoder().decode(bytes) !== '1') bad(rel, 'datastore version is not 1')
    } else if (parts.length === 3 && parts[1] === 'pin' && rel.endsWith('.data')) {
      const cid = parseBase36Cid(name)
      if (cid === undefined) bad(rel, 'pin key is not a canonical base36 CIDv1')
      else if (!equals(bytes, PIN_RECORD)) bad(rel, 'pin record is not { depth: Infinity, metadata: {} }')
      else scan.pins.set(cid.toString(), rel)
    } else if (parts.length === 3 && parts[1] === 'pinned-block' && rel.endsWith('.data')) {
      blockRecord(name, bytes, rel)
    } else {
      bad(rel, 'not a datastore record this store writes')
    }
  }
  // The log's records replace the files' of the same block: PinDatastore writes a block's later record to the log and leaves the file.
  if (logged !== undefined) inspectPinLog(logged.rel, logged.bytes, scan, blockRecord)
  return scan

  function blockRecord (name: string, bytes: Uint8Array, rel: string): void {
    const digest = decodeDigest(() => base36.decode(name))
    const pinnedBy = digest === undefined ? undefined : decodePinnedBlock(bytes)
    if (digest === undefined || base36.encode(digest.bytes) !== name) bad(rel, 'pinned-block key is not a base36 multihash')
    else if (pinnedBy === undefined) bad(rel, 'pinned-block record does not decode to { pinCount, pinnedBy }')
    else scan.records.set(name, { pinnedBy, rel })
  }
}

/** The pin log's records, line by line in order (a line's check covers every line before it); a torn last line is damage here, as nothing may be left unfinished in a store the audit reads. */
function inspectPinLog (rel: string, bytes: Buffer, scan: PinScan, blockRecord: (name: string, bytes: Uint8Array, rel: string) => void): void {
  let lines: PinLogLine[]
  let complete: number
  try {
    ({ lines, complete } = parsePinLog(bytes, rel))
  } catch (err) {
    scan.damage.push({ where: rel, problem: (err as Error).message })
    return
  }
  if (complete < bytes.length) scan.damage.push({ where: rel, problem: 'its last line is torn (a write that did not finish)' })
  const last = new Map(lines.map(l => [l.name.slice(BLOCK_RECORD.length), l.value]))
  for (const [name, value] of last) {
    if (value === undefined) scan.records.delete(name)
    else blockRecord(name, value, rel)
  }
}

/** Walks every pin's DAG and compares it with the pinned-block records. */
async function checkPinnedBlocks (dir: string, intact: Set<string>, scan: PinScan, options: AbortOptions): Promise<StoreDamage[]> {
  const damage: StoreDamage[] = []
  const expected = new Map<string, Set<string>>()
  const incomplete = new Set<string>()
  const blockstore = { get: (cid: CID) => readIntact(dir, intact, cid) }
  for (const pin of scan.pins.keys()) {
    const todo = [CID.parse(pin)]
    const seen = new Set<string>()
    for (let cid = todo.pop(); cid !== undefined; cid = todo.pop()) {
      options.signal?.throwIfAborted()
      const key = base36.encode(cid.multihash.bytes)
      if (seen.has(key)) continue
      seen.add(key)
      let pinners = expected.get(key)
      if (pinners === undefined) expected.set(key, pinners = new Set())
      pinners.add(pin)
      if (cid.multihash.code !== identity.code && !intact.has(base32upper.encode(cid.multihash.bytes))) {
        damage.push({ where: cid.toString(), problem: `pinned by ${pin} but missing or damaged` })
        incomplete.add(pin)
        continue
      }
      if (cid.code === raw.code) continue
      try {
        const entry = await exporter(cid, blockstore, { signal: options.signal })
        if (entry.type === 'file' || entry.type === 'directory') todo.push(...entry.node.Links.map(link => link.Hash))
      } catch (err) {
        damage.push({ where: cid.toString(), problem: `pinned by ${pin} but does not decode: ${(err as Error).name}` })
        incomplete.add(pin)
      }
    }
  }
  // A pin whose walk stopped early still needs records for the blocks it reached; only
  // records naming it for blocks past the break cannot be checked.
  for (const key of new Set([...expected.keys(), ...scan.records.keys()])) {
    const want = expected.get(key) ?? new Set<string>()
    const record = scan.records.get(key)
    const have = record?.pinnedBy ?? new Set<string>()
    const missing = [...want].filter(p => !have.has(p))
    const extra = [...have].filter(p => !want.has(p) && !incomplete.has(p))
    if (missing.length + extra.length > 0) {
      damage.push({ where: record?.rel ?? `datastore/${PIN_LOG}`, problem: `pinned-block record lacks pins [${missing.join(', ')}] and names pins [${extra.join(', ')}] whose DAGs do not hold it` })
    }
  }
  return damage
}

async function * readIntact (dir: string, intact: Set<string>, cid: CID): AsyncGenerator<Uint8Array> {
  if (cid.multihash.code === identity.code) { yield cid.multihash.digest; return }
  const stem = base32upper.encode(cid.multihash.bytes)
  const bytes = intact.has(stem) ? await readBlockFile(join(dir, 'blocks', stem.slice(-2), `${stem}.data`)) : undefined
  // Re-checked: the file may have changed since the scan.
  if (bytes === undefined || !blockMatches(cid.multihash, bytes)) throw new Error(`block ${cid} is missing or damaged`)
  yield bytes
}

function decodePinnedBlock (bytes: Uint8Array): Set<string> | undefined {
  try {
    const value = cborg.decode(bytes) as { pinCount?: unknown, pinnedBy?: unknown }
    const keys = Object.keys(value).sort().join()
    if (keys !== 'pinCount,pinnedBy' || !Array.isArray(value.pinnedBy) || value.pinCount !== value.pinnedBy.length || value.pinCount === 0) return undefined
    if (!equals(cborg.encode(value), bytes)) return undefined
    const pins = value.pinnedBy.map(b => CID.decode(b as Uint8Array).toString())
    return new Set(pins).size === pins.length ? new Set(pins) : undefined
  } catch {
    return undefined
  }
}

function parseBase36Cid (text: string): CID | undefined {
  try {
    const cid = CID.parse(text, base36)
    return cid.version === 1 && cid.toString(base36) === text ? cid : undefined
  } catch {
    return undefined
  }
}

function decodeDigest (bytes: () => Uint8Array): MultihashDigest | undefined {
  try {
    return Digest.decode(bytes())
  } catch {
    return undefined
  }
}

/** Every entry under `root`, as store-relative paths with `/` separators; none when it does not exist. */
async function listTree (root: string, prefix: string): Promise<Array<{ rel: string, isFile: boolean, isDir: boolean }>> {
  const entries = await readdir(root, { withFileTypes: true, recursive: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return []
    throw err
  })
  return entries.map(e => ({
    rel: [prefix, ...e.parentPath.slice(root.length).split(sep).filter(Boolean), e.name].join('/'),
    isFile: e.isFile(),
    isDir: e.isDirectory()
  }))
}

function report (damage: StoreDamage[], logger?: Logger): string[] {
  for (const d of damage) logger?.warn('store damaged', d)
  return [...new Set(damage.map(d => d.where))].sort()
}

function equals (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i])
}
