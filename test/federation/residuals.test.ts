import { execFileSync } from 'node:child_process'
import { mkdir, writeFile, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Residuals } from '../../src/federation/residuals.ts'
import { toSafetensors, type Weights } from '../../src/ml/weights.ts'
import { tempDir } from './helpers.ts'

const vec = (...values: number[]): Weights => new Map([['w', { shape: [values.length], data: Float32Array.from(values) }]])

describe('a member\'s residuals', () => {
  it('are read back by a restarted member', async () => {
    const dir = await tempDir()
    await new Residuals(dir).keep(1, vec(1, 2))
    expect([...(await new Residuals(dir).owed(2))?.get('w')?.data ?? []]).toEqual([1, 2])
  })

  // Found in review: a residual was read with readFile on resume, which waited on a FIFO for good
  // and followed a link (another member's residual taken as this member's own).
  it('refuses a FIFO or a link in place of a residual at once, naming it', async () => {
    for (const plant of ['fifo', 'link']) {
      const dir = await tempDir()
      const path = join(dir, 'residual-1.safetensors')
      if (plant === 'fifo') execFileSync('mkfifo', [path])
      else {
        await mkdir(join(dir, 'elsewhere'))
        await writeFile(join(dir, 'elsewhere', 'other'), toSafetensors(vec(7, 7)))
        await symlink(join(dir, 'elsewhere', 'other'), path)
      }
      const err = await new Residuals(dir).owed(2).catch((e: unknown) => e)
      expect(err).toMatchObject({ name: 'DamagedFileError', message: expect.stringContaining(path) })
      expect(String(err)).toContain('move it away')
    }
  }, 5_000)
})
