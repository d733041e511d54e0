import { createHash } from 'node:crypto'
import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Checkpoint } from '../../src/core/records.ts'
import { startDashboard, type Dashboard } from '../../src/dashboard/server.ts'
import { runFederation } from '../../src/federation/run.ts'
import type { RunView } from '../../src/federation/run-view.ts'
import { loadOrCreateKeystore, peekRecord } from '../../src/identity/index.ts'
import { openLedgerDir, type Block } from '../../src/ledger/index.ts'
import { openTangle } from '../../src/ledger/tangle.ts'
import { smallConfig, tempDir } from '../federation/helpers.ts'

/**
 * A finished one-round run whose recorder anchored a checkpoint naming a model of its own
 * making before the right one (`dir`), and its real model's sha-256 (`model`).
 */
async function forgedRun (): Promise<{ dir: string, model: string, made: string }> {
  const root = await tempDir('conclave-forged-checkpoint-')
  const real = join(root, 'real')
  const dir = join(root, 'forged')
  await runFederation(smallConfig({ rounds: 1 }), { out: real })
  await cp(real, dir, { recursive: true })
  const opened = await openLedgerDir(join(real, 'ledger'))
  const blocks: Block[] = []
  for await (const b of opened.blocks()) blocks.push(b)
  await opened.close()
  const at = blocks.findIndex(b => peekRecord(b.record).record?.type === 'checkpoint')
  const checkpoint = blocks[at] as Block
  // The ledger file up to the checkpoint (its header line first), then the forgery and the real one.
  const file = join(dir, 'ledger', 'tangle.jsonl')
  const lines = (await readFile(file, 'utf8')).split('\n').filter(l => l.length > 0)
  await writeFile(file, lines.slice(0, lines.length - blocks.length + at).join('\n') + '\n')
  const { record, issuer } = peekRecord(checkpoint.record) as { record: Checkpoint, issuer: string }
  const keys = await Promise.all((await readdir(join(real, 'keys'))).filter(f => f.endsWith('.key.json')).map(async f => loadOrCreateKeystore(join(real, 'keys', f))))
  const recorder = keys.find(k => k.did === issuer)
  if (recorder === undefined) throw new Error('no key for the recorder')
  const made = createHash('sha256').update('a model of my own').digest('hex')
  const tangle = await openTangle({ dir: join(dir, 'ledger'), difficulty: 4 })
  await tangle.append(await recorder.sign({ ...record, model: { cid: record.model.cid, sha256: made } }))
  await tangle.append(checkpoint.record)
  await tangle.close()
  return { dir, model: record.model.sha256, made }
}

// Found red-teaming: the dashboard applied records without deriving merges, so the recorder's
// made-up model was shown as round 1's, and the real checkpoint after it as refused, while every
// member and the audit refuse the made-up one.
describe('the dashboard and a recorder\'s checkpoint that names a model of its own making', () => {
  let run: { dir: string, model: string, made: string }
  let dashboard: Dashboard | undefined
  beforeAll(async () => { run = await forgedRun() }, 120_000)
  afterEach(async () => { await dashboard?.close(); dashboard = undefined })

  const state = async (dir: string): Promise<RunView> => {
    dashboard = await startDashboard({ dir, port: 0 })
    return await (await fetch(new URL('/api/state', dashboard.url))).json() as RunView
  }

  it('shows the model the accepted updates merge to, and the made-up one refused, as the audit does', async () => {
    const view = await state(run.dir)
    expect(view.checkpoints).toEqual({ rederived: true, why: null })
    expect(view.rounds.map(r => r.model)).toEqual([run.model])
    expect(view.refused.map(r => ({ type: r.type, code: r.code }))).toEqual([{ type: 'checkpoint', code: 'ERR_DERIVATION_MISMATCH' }])
  })

  it('without the run\'s store, says the models are as the recorders signed them', async () => {
    const dir = `${run.dir}-ledger-only`
    await cp(run.dir, dir, { recursive: true })
    await rm(join(dir, 'store'), { recursive: true })
    const view = await state(dir)
    expect(view.checkpoints).toEqual({ rederived: false, why: 'no content store to derive them from' })
    expect(view.rounds.map(r => r.model)).toEqual([run.made])
  })
})
