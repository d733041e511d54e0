import { execFileSync } from 'node:child_process'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect, it, vi } from 'vitest'
import { tempDir } from './helpers.ts'

// Found red-teaming: between a --resume's read-only check of its directory and its lock, another
// process may replace the run (a `--force` run with other settings, killed before its first
// record), and nothing was checked again under the lock: the resume started the run anew by the
// old settings. The interleaving is forced by doing that other process's work just before the
// real lock is taken.
const swap = vi.hoisted(() => ({ before: undefined as undefined | (() => Promise<void>) }))
vi.mock('../../src/federation/dir-lock.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/federation/dir-lock.ts')>()
  return { ...real, holdingDir: async <T>(dir: string, body: () => Promise<T>) => { await swap.before?.(); return real.holdingDir(dir, body) } }
})

const BIN = join(import.meta.dirname, '../../bin/conclave.js')

it('a --resume whose directory was replaced (another --force run, killed before its first record) between the check and the lock is refused', async () => {
  const { readRunConfig, runFederation } = await import('../../src/federation/run.ts')
  const base = await tempDir()
  const out = join(base, 'run')
  await writeFile(join(base, 'c.yaml'), 'agents: 3\nrounds: 2\nseed: 7\nquorum: majority\nledger: { kind: tangle, difficulty: 4 }\ntask: { kind: classify, trainLimit: 300, testLimit: 200, features: 512 }\nagent: { driver: autopilot }\n')
  execFileSync(process.execPath, [BIN, 'run', '--config', join(base, 'c.yaml'), '--out', out], { stdio: 'ignore' })
  const config = await readRunConfig(out)
  swap.before = async () => {
    swap.before = undefined
    // What `conclave run --config other.yaml --out DIR --force` leaves when killed before its first record:
    // the old run removed, its own config.json (another seed) and marker.
    const text = (await readFile(join(out, 'config.json'), 'utf8')).replace('"seed": 7', '"seed": 8')
    for (const e of ['ledger', 'store', 'keys', 'report.json', 'report.md', 'manifest.json', 'head.json']) await rm(join(out, e), { recursive: true, force: true })
    await writeFile(join(out, 'config.json'), text)
  }
  await expect(runFederation(config, { out, resume: true })).rejects.toMatchObject({ name: 'RunDirectoryError' })
}, 120_000)
