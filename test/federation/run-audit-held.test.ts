import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect, it, vi } from 'vitest'
import { lockRunDir } from '../../src/federation/dir-lock.ts'
import { capture } from './capture.ts'
import { tempDir } from './helpers.ts'

// `conclave run` audited its directory and wrote report.json again after it had let go of the
// lock: a process started meanwhile (a `--force` run, a `--resume`) would have its directory
// audited, and its report written over, by this one. What the audit finds when it starts is
// recorded: whether the directory could be taken then.
const seen = vi.hoisted(() => ({ takeable: undefined as boolean | undefined }))
vi.mock('../../src/cli/audit-dir.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/cli/audit-dir.ts')>()
  return {
    ...real,
    auditRunDir: async (dir: string, ...rest: unknown[]) => {
      const release = await lockRunDir(dir).catch(() => undefined)
      seen.takeable = release !== undefined
      await release?.()
      return await (real.auditRunDir as (dir: string, ...rest: unknown[]) => ReturnType<typeof real.auditRunDir>)(dir, ...rest)
    }
  }
})

it('conclave run still holds its directory while it audits it and writes the audit into its report', async () => {
  const base = await tempDir()
  const out = join(base, 'run')
  await writeFile(join(base, 'c.yaml'), 'agents: 3\nrounds: 1\nseed: 7\nquorum: majority\nledger: { kind: tangle, difficulty: 4 }\ntask: { kind: classify, trainLimit: 300, testLimit: 200, features: 512 }\nagent: { driver: autopilot }\n')
  const { code, out: printed } = await capture(['run', '--config', join(base, 'c.yaml'), '--out', out])
  expect(printed).toContain('audit ok')
  expect(code).toBe(0)
  expect(seen.takeable).toBe(false)
}, 120_000)
