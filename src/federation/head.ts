import { join } from 'node:path'
import { z } from 'zod'
import { ConfigError, HeadMismatchError, InvalidRecordError, NotMemberError } from '../core/errors.ts'
import { writeAtomic } from '../core/files.ts'
import { BlockId, Did, Sha256Hex } from '../core/records.ts'
import { signClaims, verifyClaims, type Identity } from '../identity/index.ts'
import { openLedgerDir, type Block } from '../ledger/index.ts'
import { sha256Hex } from './content.ts'
import { MANIFEST_FILE, manifestText, parseSealedFile, readSealedFile, takeManifest } from './manifest.ts'

export const HEAD_FILE = 'head.json'

/**
 * Where a run ended: the ledger's tips (the blocks nobody approves yet, which together
 * approve every other block), how many blocks it holds, the final model, and the sha-256
 * of `manifest.json` (every byte under `ledger/` and `store/`). Its id, the sha-256 of
 * its canonical JSON, is what a researcher keeps: `conclave audit DIR --head ID`.
 */
export const RunHead = z.object({
  federation: z.string().min(1).max(64),
  tips: z.array(BlockId).min(1).max(10_000),
  blocks: z.number().int().positive(),
  model: Sha256Hex,
  manifest: Sha256Hex
}).strict()
export type RunHead = z.infer<typeof RunHead>

/** A head names at most 10,000 tips and holds a signature per member (MAX_MEMBERS). */
const MAX_HEAD_BYTES = 4 * 1024 * 1024

/** `DIR/head.json`: the head, its id, and one signature (a JWT over the id) per member that vouches for it. */
const HeadFile = z.object({
  id: Sha256Hex,
  head: RunHead,
  signatures: z.array(z.string().min(1)).min(1).max(256)
}).strict()
type HeadFile = z.infer<typeof HeadFile>

/** What `conclave audit --json` prints as `head`: the ledger's head as the audit derived it, and who signed it. */
export const HeadReport = RunHead.extend({ id: Sha256Hex, signedBy: z.array(Did) })
export type HeadReport = z.infer<typeof HeadReport>

export function headId (head: RunHead): string {
  const { federation, tips, blocks, model, manifest } = head
  return sha256Hex(Buffer.from(JSON.stringify({ federation, tips, blocks, model, manifest })))
}

/** The head of `blocks` (in ledger order, none missing). */
export function ledgerHead (blocks: readonly Block[], ends: { federation: string, model: string, manifest: string }): RunHead {
  const approved = new Set(blocks.flatMap(b => b.parents))
  const tips = blocks.map(b => b.id).filter(id => !approved.has(id)).sort()
  return { federation: ends.federation, tips, blocks: blocks.length, model: ends.model, manifest: ends.manifest }
}

export interface SealOptions {
  /** The federation's id (its charter's). */
  federation: string
  /** sha-256 of the final global model. */
  model: string
  /** The members who vouch for the head: each signs its id. */
  signers: readonly Identity[]
}

/**
 * Seals a finished run directory: writes `manifest.json` (what is under `ledger/` and
 * `store/` now) and `head.json` (the head, signed by each of `signers`). Both must be
 * closed: the files are final. Returns the head and its id.
 */
export async function sealRunDir (dir: string, options: SealOptions): Promise<{ id: string, head: RunHead }> {
  const manifest = await takeManifest(dir)
  if (manifest.others.length > 0) throw new ConfigError(`cannot seal ${dir}: ${manifest.others.join(', ')} is neither a file nor a folder`)
  const text = manifestText(manifest)
  const ledger = await openLedgerDir(join(dir, 'ledger'))
  const blocks: Block[] = []
  try {
    for await (const block of ledger.blocks()) blocks.push(block)
  } finally {
    await ledger.close()
  }
  const head = ledgerHead(blocks, { federation: options.federation, model: options.model, manifest: sha256Hex(Buffer.from(text)) })
  const id = headId(head)
  const signatures = await Promise.all(options.signers.map(async s => signClaims(s, { head: id })))
  await writeAtomic(join(dir, MANIFEST_FILE), text)
  await writeAtomic(join(dir, HEAD_FILE), headFileText({ id, head, signatures }))
  return { id, head }
}

/**
 * Checks `DIR/head.json` against the head the audit derived: the same head, its id the
 * hash of it, and every signature a member's over that id. Returns the signers' DIDs.
 */
export async function checkHeadFile (dir: string, derived: RunHead, members: ReadonlySet<string>): Promise<Did[]> {
  const bytes = await readSealedFile(dir, HEAD_FILE, MAX_HEAD_BYTES, 'its signed head')
  const file = parseSealedFile(bytes, { name: HEAD_FILE, what: 'a run head', schema: HeadFile, text: headFileText })
  if (headId(file.head) !== file.id) throw new HeadMismatchError(`${HEAD_FILE}'s id ${file.id} is not the hash of its head`)
  const id = headId(derived)
  if (file.id !== id) throw new HeadMismatchError(`${HEAD_FILE} names head ${file.id}, but the ledger and files here make head ${id}`)
  const signers: Did[] = []
  for (const jwt of file.signatures) {
    const { issuer, claims } = await verifyClaims(jwt)
    if (!members.has(issuer)) throw new NotMemberError(`${HEAD_FILE} is signed by ${issuer}, who is not a member of federation ${derived.federation}`)
    if (claims.head !== id) throw new HeadMismatchError(`${issuer}'s signature in ${HEAD_FILE} is over another head`)
    if (signers.includes(issuer)) throw new InvalidRecordError(`${HEAD_FILE} holds ${issuer}'s signature twice`)
    signers.push(issuer)
  }
  return signers
}

function headFileText (file: HeadFile): string {
  const { federation, tips, blocks, model, manifest } = file.head
  return JSON.stringify({ id: file.id, head: { federation, tips, blocks, model, manifest }, signatures: file.signatures }, null, 2) + '\n'
}
