import { execFileSync } from 'node:child_process'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readPlainFile } from '../../src/core/files.ts'
import { tempDir } from '../federation/helpers.ts'

describe('reading a plain file from a directory others may write into', () => {
  it('reads a plain file, and nothing where there is nothing', async () => {
    const dir = await tempDir('conclave-files-')
    await writeFile(join(dir, 'report.json'), '{"ok":true}')
    expect((await readPlainFile(join(dir, 'report.json'), 100))?.toString()).toBe('{"ok":true}')
    expect(await readPlainFile(join(dir, 'none.json'), 100)).toBeUndefined()
  })

  // Found red-teaming: a FIFO planted at report.json hung `conclave export` after its audit passed.
  it('refuses a FIFO at once (opening one to read waits for a writer), a link, a folder and a file past the bound', async () => {
    const dir = await tempDir('conclave-files-')
    execFileSync('mkfifo', [join(dir, 'fifo')])
    await symlink('/dev/zero', join(dir, 'zeros'))
    await mkdir(join(dir, 'folder'))
    await writeFile(join(dir, 'big'), Buffer.alloc(101))
    await expect(readPlainFile(join(dir, 'fifo'), 100)).rejects.toMatchObject({ name: 'StrayFileError' })
    await expect(readPlainFile(join(dir, 'zeros'), 100)).rejects.toMatchObject({ name: 'StrayFileError' })
    await expect(readPlainFile(join(dir, 'folder'), 100)).rejects.toMatchObject({ name: 'StrayFileError' })
    await expect(readPlainFile(join(dir, 'big'), 100)).rejects.toMatchObject({ name: 'PayloadTooLargeError' })
    expect(await readPlainFile(join(dir, 'big'), 101)).toHaveLength(101)
  })
})
