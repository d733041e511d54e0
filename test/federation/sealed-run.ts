import { createHash } from 'node:crypto'
import { cp, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runFederation } from '../../src/federation/run.ts'
import type { RunConfigInput } from '../../src/federation/config.ts'
import { smallConfig, tempDir } from './helpers.ts'

/** A finished, sealed run directory (one round), made once per test file and copied for each damage. */
export async function sealedRun (overrides: RunConfigInput = {}): Promise<{ dir: string, modelHash: string }> {
  const dir = join(await tempDir(), 'run')
  const report = await runFederation(smallConfig({ rounds: 1, ...overrides }), { out: dir })
  return { dir, modelHash: report.modelHash }
}

/** A fresh copy of a run directory to damage. */
export async function copyRun (dir: string): Promise<string> {
  const copy = join(await tempDir('conclave-damaged-'), 'run')
  await cp(dir, copy, { recursive: true })
  return copy
}

/** Every entry under `dir`: each folder, and each file with its sha-256; `/`-separated relative paths, sorted. */
export async function treeOf (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  const lines = await Promise.all(entries.map(async e => {
    const rel = join(e.parentPath, e.name).slice(dir.length + 1).split('\\').join('/')
    if (e.isDirectory()) return `${rel}/`
    return `${rel} ${createHash('sha256').update(await readFile(join(e.parentPath, e.name))).digest('hex')}`
  }))
  return lines.sort()
}

/** Every file under `dir`, relative, `/`-separated, sorted. */
export async function filesOf (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries.filter(e => e.isFile()).map(e => join(e.parentPath, e.name).slice(dir.length + 1).split('\\').join('/')).sort()
}
