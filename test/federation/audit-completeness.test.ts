import { execFileSync } from 'node:child_process'
import { copyFile, mkdir, readFile, readdir, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { auditRunDir } from '../../src/cli/audit-dir.ts'
import { main } from '../../src/cli/main.ts'
import { audit } from '../../src/federation/audit.ts'
import { sealRunDir } from '../../src/federation/head.ts'
import { createIdentity, loadOrCreateKeystore } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import { openTangle } from '../../src/ledger/tangle.ts'
import { createHeliaStore } from '../../src/storage/helia.ts'
import { copyRun, filesOf, sealedRun, treeOf } from './sealed-run.ts'

let run: { dir: string, modelHash: string }
let headId: string
beforeAll(async () => {
  run = await sealedRun()
  headId = (JSON.parse(await readFile(join(run.dir, 'head.json'), 'utf8')) as { id: string }).id
})

const failure = (name: string): object => ({ ok: false, firstFailure: expect.objectContaining({ error: expect.objectContaining({ name, code: codeOf(name) }) }) })
const codeOf = (name: string): string => 'ERR_' + name.replace(/Error$/, '').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()

/** The tangle file's lines: the header, then one block per line. */
async function ledgerLines (dir: string): Promise<string[]> {
  return (await readFile(join(dir, 'ledger', 'tangle.jsonl'), 'utf8')).split('\n').slice(0, -1)
}

async function writeLedgerLines (dir: string, lines: string[]): Promise<void> {
  await writeFile(join(dir, 'ledger', 'tangle.jsonl'), lines.map(l => l + '\n').join(''))
}

/** What an attacker holding the run directory (keys/ included) does to hide a suffix: truncate, re-hash, re-sign. */
async function dropSuffixAndReseal (dir: string, drop: number): Promise<void> {
  await writeLedgerLines(dir, (await ledgerLines(dir)).slice(0, -drop))
  const ledger = await openTangle({ dir: join(dir, 'ledger'), readOnly: true })
  const store = await createHeliaStore({ dir: join(dir, 'store'), readOnly: true })
  const replayed = await audit(ledger, store)
  await ledger.close()
  await store.close()
  const keys = await readdir(join(dir, 'keys'))
  const signers = await Promise.all(keys.map(async k => loadOrCreateKeystore(join(dir, 'keys', k))))
  await sealRunDir(dir, { federation: 'conclave-local', model: replayed.modelHash as string, signers })
}

describe('the audit of a run directory proves completeness', () => {
  it('passes an untouched run and reports its signed head', async () => {
    const report = await auditRunDir(run.dir)
    expect(report).toMatchObject({ ok: true, modelHash: run.modelHash, firstFailure: null })
    expect(report.head).toMatchObject({ id: headId, federation: 'conclave-local', model: run.modelHash, blocks: report.records })
    expect(report.head?.signedBy).toHaveLength(3)
    expect(await auditRunDir(run.dir, { head: headId })).toMatchObject({ ok: true })
    expect(await auditRunDir(run.dir, { against: await copyRun(run.dir) })).toMatchObject({ ok: true })
  })

  it('fails an empty ledger: no ledger file, or a file with only its header', async () => {
    const none = await copyRun(run.dir)
    await rm(join(none, 'ledger', 'tangle.jsonl'))
    expect(await auditRunDir(none)).toMatchObject(failure('EmptyLedgerError'))
    const headerOnly = await copyRun(run.dir)
    await writeLedgerLines(headerOnly, (await ledgerLines(headerOnly)).slice(0, 1))
    expect(await auditRunDir(headerOnly)).toMatchObject(failure('EmptyLedgerError'))
  })

  it('fails a ledger of well-signed records that has no charter', async () => {
    const dir = await copyRun(run.dir)
    await rm(join(dir, 'ledger', 'tangle.jsonl'))
    const ledger = await openTangle({ dir: join(dir, 'ledger'), difficulty: 4 })
    const member = await loadOrCreateKeystore(join(dir, 'keys', 'agent-2.key.json'))
    await ledger.append(await member.sign({ type: 'vote', federation: 'conclave-local', round: 1, proposal: 'a'.repeat(64), accept: true, score: 0, rationale: 'no charter' }))
    await ledger.close()
    expect(await auditRunDir(dir)).toMatchObject(failure('MissingCharterError'))
  })

  it('fails when the last blocks are dropped, and names the copy that is behind', async () => {
    const lines = await ledgerLines(run.dir)
    for (const drop of [1, 3]) {
      const dir = await copyRun(run.dir)
      await writeLedgerLines(dir, lines.slice(0, -drop))
      expect(await auditRunDir(dir)).toMatchObject(failure('AlteredFileError'))
      expect(await auditRunDir(dir, { head: headId })).toMatchObject(failure('HeadMismatchError'))
      const behind = await auditRunDir(dir, { against: run.dir })
      expect(behind).toMatchObject(failure('LedgerBehindError'))
      expect(behind.firstFailure).toMatchObject({ seq: lines.length - 1 - drop, block: JSON.parse(lines.at(-drop) as string).id })
      expect(await auditRunDir(run.dir, { against: dir })).toMatchObject(failure('LedgerBehindError'))
    }
  })

  it('fails a dropped suffix re-sealed with the members\' own keys, given the head kept elsewhere or another copy', async () => {
    const dir = await copyRun(run.dir)
    await dropSuffixAndReseal(dir, 2)
    // The directory alone cannot tell: whoever holds a member key can re-seal a shorter history.
    const alone = await auditRunDir(dir)
    expect(alone).toMatchObject({ ok: true })
    expect(alone.head?.id).not.toBe(headId)
    expect(await auditRunDir(dir, { head: headId })).toMatchObject(failure('HeadMismatchError'))
    expect(await auditRunDir(dir, { against: run.dir })).toMatchObject(failure('LedgerBehindError'))
  })

  it('fails two copies that part ways, at the first block where they differ', async () => {
    const other = await copyRun(run.dir)
    const lines = await ledgerLines(other)
    await writeLedgerLines(other, lines.slice(0, -2))
    const ledger = await openTangle({ dir: join(other, 'ledger') })
    const member = await loadOrCreateKeystore(join(other, 'keys', 'agent-3.key.json'))
    await ledger.append(await member.sign({ type: 'vote', federation: 'conclave-local', round: 1, proposal: 'a'.repeat(64), accept: true, score: 0, rationale: 'another history' }))
    await ledger.close()
    const report = await auditRunDir(run.dir, { against: other })
    expect(report).toMatchObject(failure('LedgerDivergedError'))
    expect(report.firstFailure).toMatchObject({ seq: lines.length - 3, block: JSON.parse(lines.at(-2) as string).id })
  })

  it('fails reordered ledger lines', async () => {
    const dir = await copyRun(run.dir)
    const lines = await ledgerLines(dir)
    ;[lines[4], lines[5]] = [lines[5] as string, lines[4] as string]
    await writeLedgerLines(dir, lines)
    expect(await auditRunDir(dir)).toMatchObject({ ...failure('LedgerCorruptError'), firstFailure: expect.objectContaining({ seq: 3 }) })
  })

  it('fails a missing file anywhere under ledger/ or store/, and a missing manifest or head', async () => {
    const expected: Record<string, string> = {
      'store/datastore/version.data': 'MissingFileError',
      'manifest.json': 'MissingFileError',
      'head.json': 'MissingFileError'
    }
    const files = await filesOf(run.dir)
    const pin = files.find(f => f.startsWith('store/datastore/pin/')) as string
    const pinned = files.find(f => f === 'store/datastore/pinned-blocks.log') as string
    expected[pin] = 'MissingFileError'
    expected[pinned] = 'MissingFileError'
    for (const block of files.filter(f => f.startsWith('store/blocks/'))) expected[block] = 'any'
    for (const [file, name] of Object.entries(expected)) {
      const dir = await copyRun(run.dir)
      await rm(join(dir, file))
      const report = await auditRunDir(dir)
      expect(report.ok, file).toBe(false)
      // A block a record needs is named by that record (a merged update that is gone makes it unusable); any other by the manifest.
      if (name === 'any') expect(['ContentNotFoundError', 'InvalidWeightsError', 'MissingFileError'], file).toContain(report.firstFailure?.error.name)
      else expect(report, file).toMatchObject(failure(name))
    }
  })

  it('fails a stray file or folder anywhere under ledger/ or store/', async () => {
    const files = await filesOf(run.dir)
    const block = files.find(f => f.startsWith('store/blocks/')) as string
    const strays: Array<(dir: string) => Promise<void>> = [
      async dir => { await writeFile(join(dir, 'ledger', 'notes.txt'), 'hello') },
      async dir => { await copyFile(join(dir, 'ledger', 'tangle.jsonl'), join(dir, 'ledger', 'tangle.jsonl.bak')) },
      async dir => { await mkdir(join(dir, 'ledger', 'old')) },
      async dir => { await writeFile(join(dir, 'store', 'stray'), '') },
      async dir => { await copyFile(join(dir, block), join(dir, block.replace(/\.data$/, '.bak'))) },
      async dir => { await mkdir(join(dir, 'store', 'blocks', 'ZZ')) },
      async dir => { await writeFile(join(dir, 'store', 'datastore', 'pin', 'extra.data'), 'x') }
    ]
    for (const [i, stray] of strays.entries()) {
      const dir = await copyRun(run.dir)
      await stray(dir)
      expect(await auditRunDir(dir), `stray ${i}`).toMatchObject(failure('StrayFileError'))
    }
  })

  it('fails, before reading it, anything it would read that is not a plain file or folder: a FIFO (the read never ended), a link to /dev/zero (memory grew without bound), a linked sealed folder', async () => {
    const files = await filesOf(run.dir)
    const block = files.find(f => f.startsWith('store/blocks/')) as string
    const fifo = async (dir: string, path: string): Promise<void> => { await rm(join(dir, path), { force: true }); execFileSync('mkfifo', [join(dir, path)]) }
    const damages: Array<[string, (dir: string) => Promise<void>]> = [
      ['the ledger a FIFO', async dir => { await fifo(dir, 'ledger/tangle.jsonl') }],
      ['an extra replica file a FIFO', async dir => { await fifo(dir, 'ledger/replica.jsonl') }],
      ['a store block a FIFO', async dir => { await fifo(dir, block) }],
      ['the manifest a FIFO', async dir => { await fifo(dir, 'manifest.json') }],
      ['the head a FIFO', async dir => { await fifo(dir, 'head.json') }],
      ['an extra replica file a link to /dev/zero', async dir => { await symlink('/dev/zero', join(dir, 'ledger', 'replica.jsonl')) }],
      ['the manifest a link to /dev/zero', async dir => { await rm(join(dir, 'manifest.json')); await symlink('/dev/zero', join(dir, 'manifest.json')) }],
      ['store/ a link to an identical folder elsewhere', async dir => { await rename(join(dir, 'store'), join(dir, '..', `${dir.split('/').at(-1) as string}-store`)); await symlink(join(dir, '..', `${dir.split('/').at(-1) as string}-store`), join(dir, 'store')) }]
    ]
    for (const [what, damage] of damages) {
      const dir = await copyRun(run.dir)
      await damage(dir)
      expect(await auditRunDir(dir), what).toMatchObject(failure('StrayFileError'))
    }
    const folder = await copyRun(run.dir)
    await rm(join(folder, 'ledger', 'tangle.jsonl'))
    await mkdir(join(folder, 'ledger', 'tangle.jsonl'))
    expect(await auditRunDir(folder), 'a folder where the ledger file was (it threw EISDIR, and --json printed no JSON)').toMatchObject(failure('LedgerCorruptError'))
    const other = await copyRun(run.dir)
    await fifo(other, 'ledger/tangle.jsonl')
    expect(await auditRunDir(run.dir, { against: other }), 'the other copy\'s ledger a FIFO').toMatchObject(failure('StrayFileError'))
  })

  it('fails a manifest or head too large to be one without reading it whole (a 100 MiB file was read into memory, then taken for a bad record)', async () => {
    for (const file of ['manifest.json', 'head.json']) {
      const dir = await copyRun(run.dir)
      await truncate(join(dir, file), 100 * 1024 * 1024)
      expect(await auditRunDir(dir), file).toMatchObject(failure('PayloadTooLargeError'))
    }
  })

  it('fails a manifest or head that was changed, and a head signed by someone who is not a member', async () => {
    for (const file of ['manifest.json', 'head.json']) {
      const dir = await copyRun(run.dir)
      const bytes = await readFile(join(dir, file))
      bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0x01
      await writeFile(join(dir, file), bytes)
      expect((await auditRunDir(dir)).ok, file).toBe(false)
    }
    const dir = await copyRun(run.dir)
    await sealRunDir(dir, { federation: 'conclave-local', model: run.modelHash, signers: [createIdentity(randomSecretKey())] })
    expect(await auditRunDir(dir)).toMatchObject(failure('NotMemberError'))
  })
})

describe('the audit changes no byte of what it checks', () => {
  it('leaves every file and folder as it was, whether the audit passes or fails, and the copy it compares with', async () => {
    const compared = await treeOf(run.dir)
    const cases: Array<[string, (dir: string) => Promise<void>, object]> = [
      ['untouched', async () => {}, { ok: true }],
      ['no version.data', async dir => { await rm(join(dir, 'store', 'datastore', 'version.data')) }, failure('MissingFileError')],
      ['no blocks/', async dir => { await rm(join(dir, 'store', 'blocks'), { recursive: true }) }, { ok: false }],
      ['empty ledger/ and store/', async dir => {
        await rm(join(dir, 'ledger'), { recursive: true }); await mkdir(join(dir, 'ledger'))
        await rm(join(dir, 'store'), { recursive: true }); await mkdir(join(dir, 'store'))
      }, failure('EmptyLedgerError')],
      ['a torn ledger', async dir => { await writeFile(join(dir, 'ledger', 'tangle.jsonl'), (await readFile(join(dir, 'ledger', 'tangle.jsonl'))).subarray(0, 500)) }, failure('LedgerCorruptError')]
    ]
    for (const [what, damage, expected] of cases) {
      const dir = await copyRun(run.dir)
      await damage(dir)
      const before = await treeOf(dir)
      expect(await auditRunDir(dir, { head: headId, against: run.dir }), what).toMatchObject(expected)
      expect(await treeOf(dir), what).toEqual(before)
    }
    expect(await treeOf(run.dir)).toEqual(compared)
  })
})

describe('conclave audit --head / --against', () => {
  async function capture (argv: string[]): Promise<{ code: number, out: string }> {
    let out = ''
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => { out += String(c); return true })
    const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
      return { code: await main(argv), out }
    } finally {
      o.mockRestore()
      e.mockRestore()
    }
  }

  it('prints the head, and exits 1 when the ledger\'s head is not the one given or another copy is ahead', async () => {
    const ok = await capture(['audit', run.dir, '--json'])
    expect(ok.code).toBe(0)
    expect(JSON.parse(ok.out)).toMatchObject({ ok: true, head: { id: headId } })
    expect((await capture(['audit', run.dir, '--head', headId])).code).toBe(0)
    expect((await capture(['audit', run.dir, '--head', 'f'.repeat(64)])).code).toBe(1)
    const behind = await copyRun(run.dir)
    await dropSuffixAndReseal(behind, 1)
    expect((await capture(['audit', behind, '--against', run.dir])).code).toBe(1)
    expect((await capture(['audit', run.dir, '--against', behind, '--json'])).out).toMatch(/LedgerBehindError/)
  })
})
