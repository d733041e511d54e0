import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { link, lstat, mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { appendSynced, readPlainFile, readStreamCapped, writeAtomic } from '../../src/core/files.ts'
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

  // Found red-teaming the plain-file ledger open: a socket refuses open() with ENXIO, which came out raw.
  it('refuses a socket by name', async () => {
    const dir = await tempDir('conclave-files-')
    const server = createServer().listen(join(dir, 'socket'))
    await once(server, 'listening')
    try {
      await expect(readPlainFile(join(dir, 'socket'), 100)).rejects.toMatchObject({ name: 'StrayFileError', message: expect.stringContaining('socket') })
    } finally {
      server.close()
    }
  })
})

describe('reading a stream that need never end', () => {
  /** Ten-byte chunks, `count` of them (endless by default), counting what was pulled. */
  function chunks (count = Infinity): { source: AsyncIterable<Uint8Array>, pulled: () => number } {
    let pulled = 0
    async function * source (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < count; i++) { pulled += 10; yield Buffer.alloc(10, i) }
    }
    return { source: source(), pulled: () => pulled }
  }

  it('reads a stream within the bound whole', async () => {
    const { source } = chunks(3)
    expect(await readStreamCapped(source, 30, 'stdin')).toEqual(Buffer.concat([0, 1, 2].map(i => Buffer.alloc(10, i))))
  })

  // Found red-teaming: `conclave predict` buffered all of stdin, so an endless pipe filled its memory.
  it('refuses one past the bound, reading no chunk after the one that passes it', async () => {
    const { source, pulled } = chunks()
    await expect(readStreamCapped(source, 95, 'stdin')).rejects.toMatchObject({ name: 'PayloadTooLargeError', code: 'ERR_PAYLOAD_TOO_LARGE' })
    expect(pulled()).toBe(100)
  })
})

describe('replacing a file in a directory others may write into', () => {
  // Found red-teaming: a resume wrote its report through a link planted in the run directory.
  it('replaces a link at the path rather than writing through it', async () => {
    const dir = await tempDir('conclave-files-')
    const theirs = join(dir, 'theirs.txt')
    await writeFile(theirs, 'mine')
    await symlink(theirs, join(dir, 'report.md'))
    await writeAtomic(join(dir, 'report.md'), 'report')
    expect((await lstat(join(dir, 'report.md'))).isFile()).toBe(true)
    expect(await readFile(join(dir, 'report.md'), 'utf8')).toBe('report')
    expect(await readFile(theirs, 'utf8')).toBe('mine')
  })

  // Found red-teaming the first fix, which refused a symbolic link there (ELOOP): a hard link
  // at the half-written copy's name was opened with O_TRUNC and the linked file overwritten.
  it.each([['a symbolic link', symlink], ['a hard link', link]] as const)('writes nothing through %s where its half-written copy goes, and replaces the file', async (_, plant) => {
    for (const sync of [false, true]) {
      const dir = await tempDir('conclave-files-')
      const theirs = join(dir, 'theirs.txt')
      await writeFile(theirs, 'mine')
      await plant(theirs, join(dir, 'votes.svg.tmp'))
      await writeAtomic(join(dir, 'votes.svg'), 'votes', { sync })
      expect(await readFile(theirs, 'utf8')).toBe('mine')
      expect(await readFile(join(dir, 'votes.svg'), 'utf8')).toBe('votes')
      expect((await lstat(join(dir, 'votes.svg'))).nlink).toBe(1)
    }
  })
})

describe('appending to a file in a directory others may write into', () => {
  it('creates the file where there is none, and appends to it', async () => {
    const dir = await tempDir('conclave-files-')
    await appendSynced(join(dir, 'notes'), 'a\n', { named: true })
    await appendSynced(join(dir, 'notes'), 'b\n')
    expect(await readFile(join(dir, 'notes'), 'utf8')).toBe('a\nb\n')
  })

  // Found in review: appendSynced opened with 'a', which waited for good on a FIFO there (for a
  // reader) and followed a link, appending to the linked file.
  it('refuses a FIFO, a link and a folder at once, naming it, and writes nothing through the link', async () => {
    const dir = await tempDir('conclave-files-')
    const theirs = join(dir, 'theirs.txt')
    await writeFile(theirs, 'mine')
    execFileSync('mkfifo', [join(dir, 'fifo')])
    await symlink(theirs, join(dir, 'link'))
    await symlink(join(dir, 'nothing'), join(dir, 'dangling'))
    await mkdir(join(dir, 'folder'))
    for (const name of ['fifo', 'link', 'dangling', 'folder']) {
      await expect(appendSynced(join(dir, name), 'x\n')).rejects.toMatchObject({ name: 'StrayFileError', message: expect.stringContaining(join(dir, name)) })
    }
    expect(await readFile(theirs, 'utf8')).toBe('mine')
    await expect(lstat(join(dir, 'nothing'))).rejects.toMatchObject({ code: 'ENOENT' })
  }, 5_000)
})
