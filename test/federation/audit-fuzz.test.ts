import fc from 'fast-check'
import { appendFile, mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { auditRunDir } from '../../src/cli/audit-dir.ts'
import { ConclaveError } from '../../src/core/errors.ts'
import { copyRun, filesOf, sealedRun, treeOf } from './sealed-run.ts'

/** What the audit answers for: the sealed folders and the two files that seal them. */
const audited = (path: string): boolean => /^(ledger|store)\//.test(path) || path === 'manifest.json' || path === 'head.json'

/** One piece of damage, by index into the run's files or folders (taken modulo their number). */
const Damage = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), file: fc.nat(), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), file: fc.nat(), keep: fc.nat() }),
  fc.record({ kind: fc.constant('delete' as const), file: fc.nat() }),
  fc.record({ kind: fc.constant('delete-folder' as const), folder: fc.nat() }),
  fc.record({ kind: fc.constant('extra' as const), folder: fc.nat(), name: fc.constantFrom('x', 'x.data', 'tangle.jsonl.1', 'version.data', 'AA'), bytes: fc.uint8Array({ maxLength: 64 }), asFolder: fc.boolean() }),
  fc.record({ kind: fc.constant('append' as const), file: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('reorder' as const), file: fc.nat(), i: fc.nat(), j: fc.nat() })
)
type Damage = typeof Damage extends fc.Arbitrary<infer T> ? T : never

describe('the audit of randomly damaged run directories (fuzz)', () => {
  let run: string
  let files: string[]
  let folders: string[]
  let original: string[]
  beforeAll(async () => {
    run = (await sealedRun({ agents: 2, task: { kind: 'classify', trainLimit: 200, testLimit: 60, features: 128 } })).dir
    files = (await filesOf(run)).filter(audited)
    folders = ['ledger', 'store', ...(await readdir(run, { withFileTypes: true, recursive: true }))
      .filter(e => e.isDirectory()).map(e => join(e.parentPath, e.name).slice(run.length + 1)).filter(audited)]
    original = await treeOf(run)
  })

  async function damage (dir: string, d: Damage): Promise<void> {
    const pick = <T>(list: T[], n: number): T => list[n % list.length] as T
    const file = 'file' in d ? join(dir, pick(files, d.file)) : ''
    const bytes = 'file' in d ? await readFile(file).catch(() => undefined) : undefined
    switch (d.kind) {
      case 'flip':
        if (bytes === undefined || bytes.length === 0) return
        bytes[d.at % bytes.length] = (bytes[d.at % bytes.length] as number) ^ d.mask
        return writeFile(file, bytes)
      case 'truncate':
        if (bytes === undefined) return
        return truncate(file, d.keep % (bytes.length + 1))
      case 'delete':
        return rm(file, { force: true })
      case 'delete-folder':
        return rm(join(dir, pick(folders, d.folder)), { recursive: true, force: true })
      case 'extra': {
        const where = join(dir, pick(folders, d.folder))
        await mkdir(where, { recursive: true })
        if (d.asFolder) return mkdir(join(where, d.name), { recursive: true }).then(() => {}).catch(() => {})
        return writeFile(join(where, d.name), d.bytes).catch(() => {})
      }
      case 'append':
        if (bytes === undefined) return
        return appendFile(file, d.bytes)
      case 'reorder': {
        if (bytes === undefined) return
        const lines = bytes.toString('latin1').split('\n')
        const [i, j] = [d.i % lines.length, d.j % lines.length]
        ;[lines[i], lines[j]] = [lines[j] as string, lines[i] as string]
        return writeFile(file, Buffer.from(lines.join('\n'), 'latin1'))
      }
    }
  }

  it('never passes unless the damage changed nothing, and never throws anything but a ConclaveError', async () => {
    await fc.assert(fc.asyncProperty(fc.array(Damage, { minLength: 1, maxLength: 3 }), async damages => {
      const dir = await copyRun(run)
      try {
        for (const d of damages) await damage(dir, d)
        const unchanged = (await treeOf(dir)).join('\n') === original.join('\n')
        let ok: boolean
        try {
          ok = (await auditRunDir(dir)).ok
        } catch (err) {
          // A sealed folder gone altogether is not a run directory (ConfigError); anything else would be a bug.
          expect(err).toBeInstanceOf(ConclaveError)
          ok = false
        }
        expect(ok).toBe(unchanged)
      } finally {
        await rm(dirname(dir), { recursive: true, force: true })
      }
    }), { seed: 1414, numRuns: 200 })
  })
})
