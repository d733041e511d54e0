import { execFileSync } from 'node:child_process'
import { mkdtemp, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'vitest'
import type { Logger } from '../../src/core/logger.ts'
import type { Charter, Did, Vote } from '../../src/core/records.ts'
import { COPY_MADE_FILE } from '../../src/ledger/copy-made.ts'
import { mine } from '../../src/ledger/dag.ts'
import type { Block, Ledger } from '../../src/ledger/index.ts'
import type { ReplicaBlock } from '../../src/transport/index.ts'

/** Every block a ledger yields, in its order. */
export async function all (ledger: Ledger): Promise<Block[]> {
  const out: Block[] = []
  for await (const b of ledger.blocks()) out.push(b)
  return out
}

/** A block as another copy would publish it, honestly mined unless told otherwise, dated now unless told otherwise. */
export async function forge (record: string, parents: string[] = [], options: { difficulty?: number, time?: number } = {}): Promise<ReplicaBlock> {
  const time = options.time ?? Math.floor(Date.now() / 1000)
  const { id, pow } = await mine([parents, record, time], options.difficulty ?? 4)
  return { id, parents, record, time, pow }
}

/** A vote on a made-up proposal: a record the ledgers accept without any federation behind it. */
export const vote = (n: number): Vote => ({ type: 'vote', federation: 'test', round: 1, proposal: String(n).padStart(64, 'b'), accept: true, score: 0.1, rationale: `vote ${n}` })

/** The charter of a federation `test` of `members`, the first its founder. */
export function charterOf (members: Did[]): Charter {
  return {
    type: 'charter', federation: 'test', round: 0, members, quorum: { kind: 'count', count: 1 },
    windowSeconds: 600, aggregation: 'fedavg', momentum: 0, task: 'classify',
    initial: { cid: 'bafkreigyghlpe6l7tbxlkrj6upeg4g3ky7vmss5dl3oro4ylsoktmbm27i', sha256: 'a'.repeat(64) }
  }
}

/** A logger that counts the errors of the blocks a replica refuses, by name. */
export function refusals (): Logger & { refused: Map<string, number> } {
  const refused = new Map<string, number>()
  return {
    refused,
    info () {},
    warn (_message, fields) {
      const name = (fields as { error: string }).error
      refused.set(name, (refused.get(name) ?? 0) + 1)
    }
  }
}

/** Polls `check` until it holds or `ms` pass. */
export async function eventually (check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until;) {
    if (await check()) return true
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return check()
}

/**
 * A folder for a replica copy made at `madeAt` (unix seconds), for a test whose charter is dated
 * further back than a copy made now would take: every copy of a run is made before its charter.
 */
export async function copyDirMadeAt (madeAt: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'conclave-copy-'))
  await writeFile(join(dir, COPY_MADE_FILE), JSON.stringify({ madeAt }) + '\n')
  return dir
}

/**
 * Puts a FIFO, then (in a fresh folder) a link to a file holding `linked`, where a copy's file
 * `name` goes, and expects `open(dir)` to refuse each at once: a LedgerCorruptError naming it that
 * says to move it away (a FIFO is not waited on, a link not followed).
 */
export async function expectRefusedInPlaceOf (name: string, linked: string, open: (dir: string) => Promise<unknown>): Promise<void> {
  for (const plant of ['fifo', 'link']) {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-stray-'))
    const path = join(dir, name)
    if (plant === 'fifo') execFileSync('mkfifo', [path])
    else {
      await writeFile(join(dir, 'other'), linked)
      await symlink(join(dir, 'other'), path)
    }
    const err = await open(dir).catch((e: unknown) => e)
    expect(err, plant).toMatchObject({ name: 'LedgerCorruptError', message: expect.stringContaining(path) })
    expect(String(err)).toContain('move it away')
  }
}
