import { createHash } from 'node:crypto'
import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Checkpoint } from '../../src/core/records.ts'
import { sealRunDir } from '../../src/federation/head.ts'
import { runFederation } from '../../src/federation/run.ts'
import { loadOrCreateKeystore, peekRecord } from '../../src/identity/index.ts'
import { openLedgerDir, type Block } from '../../src/ledger/index.ts'
import { openTangle } from '../../src/ledger/tangle.ts'
import { smallConfig, tempDir } from './helpers.ts'

/**
 * A finished one-round run whose recorder anchored a checkpoint naming a model of its own
 * making (`made`) before the right one (`model`, the merge of the round's accepted updates).
 * `sealed`: sealed again by every member afterwards, as a run that ended so would be, so its
 * audit passes (the recorder's checkpoint refused, as every member refused it).
 */
export async function forgedCheckpointRun (options: { sealed?: boolean } = {}): Promise<{ dir: string, model: string, made: string }> {
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
  // The ledger file up to the checkpoint (its header line first), then the forgery and the right one.
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
  if (options.sealed === true) {
    await rm(join(dir, 'manifest.json'))
    await rm(join(dir, 'head.json'))
    await sealRunDir(dir, { federation: record.federation, model: record.model.sha256, signers: keys })
  }
  return { dir, model: record.model.sha256, made }
}
