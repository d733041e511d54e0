import { execFileSync } from 'node:child_process'
import { lstat, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { agentDriver } from '../../agents/index.ts'
import { parseRunConfig, readConfigFile } from '../../src/federation/config.ts'
import { readRunConfig, runFederation } from '../../src/federation/run.ts'
import { smallConfig, tempDir } from './helpers.ts'

const refused = { name: 'RunDirectoryError', code: 'ERR_RUN_DIRECTORY' }
/** Every path under `dir`, sorted. */
async function tree (dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort()
}

const tiny = smallConfig({ agents: 2, rounds: 1, quorum: 1, agent: { driver: 'autopilot' }, task: { kind: 'classify', trainLimit: 200, testLimit: 100, features: 512 } })

describe('the run directory: --force replaces only what a Conclave run made', () => {
  it('refuses a directory that merely holds a ledger/ folder, and its other files stay', async () => {
    const out = await tempDir()
    await mkdir(join(out, 'ledger'))
    await writeFile(join(out, 'notes.txt'), 'my notes')
    await expect(runFederation(tiny, { out, force: true })).rejects.toMatchObject(refused)
    expect(await readFile(join(out, 'notes.txt'), 'utf8')).toBe('my notes')
    expect((await readdir(out)).sort()).toEqual(['ledger', 'notes.txt'])
  })

  it('refuses a run directory that someone added a file to, even with --force, and keeps everything', async () => {
    const out = await tempDir()
    await runFederation(tiny, { out })
    await writeFile(join(out, 'notes.txt'), 'my notes')
    const before = (await readdir(out)).sort()
    await expect(runFederation(tiny, { out, force: true })).rejects.toMatchObject(refused)
    expect((await readdir(out)).sort()).toEqual(before)
    expect(await readFile(join(out, 'notes.txt'), 'utf8')).toBe('my notes')
  })

  // Found red-teaming: --force went by names at the top of the directory, so a file of the
  // user's named like one a run writes there (their own report.md) was removed with the run.
  // And config.json, which each run writes anew, went by name: someone's edits to it were removed.
  it('refuses with --force a run directory whose report or config someone rewrote, and keeps it; replaces the run once it is moved away', async () => {
    const out = await tempDir()
    await runFederation(tiny, { out })
    for (const file of ['report.md', 'votes.svg', 'manifest.json', 'config.json']) {
      const theirs = await readFile(join(out, file))
      await writeFile(join(out, file), 'my notes')
      const before = await tree(out)
      await expect(runFederation(tiny, { out, force: true })).rejects.toMatchObject({ ...refused, message: expect.stringContaining(`"${file}"`) })
      expect(await readFile(join(out, file), 'utf8')).toBe('my notes')
      expect(await tree(out)).toEqual(before)
      await writeFile(join(out, file), theirs)
    }
    await runFederation(tiny, { out, force: true })
  })

  // Found red-teaming that: the settings of an edited config.json, given as --config, were refused
  // (they are this run's, written anew), and a folder where config.json was gave EISDIR.
  it('runs with --force the settings of an edited config.json given as --config, and refuses a folder where config.json was, naming it', async () => {
    const out = await tempDir()
    await runFederation(tiny, { out })
    const path = join(out, 'config.json')
    await writeFile(path, (await readFile(path, 'utf8')).replace(/"seed": \d+/, `"seed": ${tiny.seed + 1}`))
    await expect(runFederation(tiny, { out, force: true })).rejects.toMatchObject({ ...refused, message: expect.stringContaining('pass it as --config') })
    const report = await runFederation(parseRunConfig(await readConfigFile(path)), { out, force: true, configFile: path }) // as `--config DIR/config.json`
    expect(report.seed).toBe(tiny.seed + 1)
    expect(JSON.parse(await readFile(path, 'utf8')).seed).toBe(tiny.seed + 1)
    await rm(path)
    await mkdir(path)
    await writeFile(join(path, 'mine.txt'), 'my notes')
    await expect(runFederation(tiny, { out, force: true })).rejects.toMatchObject({ ...refused, message: expect.stringContaining('config.json') })
    expect(await readdir(path)).toEqual(['mine.txt'])
  })

  it('takes with --force a run of an older Conclave, whose marker names no files, by names, and marks it anew: its next --force checks the report', async () => {
    const out = await tempDir()
    await runFederation(tiny, { out })
    await writeFile(join(out, '.conclave-run'), JSON.stringify({ conclave: 'run', version: 1 }) + '\n')
    await runFederation(tiny, { out, force: true })
    expect(JSON.parse(await readFile(join(out, '.conclave-run'), 'utf8'))).toMatchObject({ conclave: 'run', version: 2, files: { 'report.md': expect.stringMatching(/^[0-9a-f]{64}$/) } })
    await writeFile(join(out, 'report.md'), 'my notes')
    await expect(runFederation(tiny, { out, force: true })).rejects.toMatchObject({ ...refused, message: expect.stringContaining('"report.md"') })
  })

  it('refuses with --force a run directory with a file someone put inside one of its folders, and removes nothing', async () => {
    const out = await tempDir()
    await runFederation(tiny, { out })
    const before = await tree(out)
    // Also names shaped like a run's, where a run never writes them (found red-teaming): a key not named for a member, a block outside its shard, another ledger.
    for (const path of ['ledger/notes.txt', 'store/blocks/my-backup.car', 'keys/README', 'store/datastore/pin/mine/x.data', 'agents/agent-1/notebook.ipynb',
      'keys/my-real-identity.key.json', 'store/blocks/AA/BMYBACKUP.data', 'agents/notes/memory.json', 'ledger/replica.jsonl']) {
      const made = await mkdir(dirname(join(out, path)), { recursive: true })
      await writeFile(join(out, path), 'mine')
      await expect(runFederation(tiny, { out, force: true })).rejects.toMatchObject({ ...refused, message: expect.stringContaining(`"${path}"`) })
      expect(await readFile(join(out, path), 'utf8')).toBe('mine')
      await rm(made ?? join(out, path), { recursive: true })
      expect(await tree(out)).toEqual(before)
    }
  })

  it('refuses with --force a run directory whose folders hold a link, and leaves where it points alone', async () => {
    const out = await tempDir()
    const elsewhere = await tempDir()
    await writeFile(join(elsewhere, 'thesis.tex'), 'mine')
    await runFederation(tiny, { out })
    await mkdir(join(out, 'agents', 'agent-2'), { recursive: true })
    await symlink(elsewhere, join(out, 'agents', 'agent-2', 'thesis'))
    await expect(runFederation(tiny, { out, force: true })).rejects.toMatchObject({ ...refused, message: expect.stringContaining('"agents/agent-2/thesis"') })
    await rm(join(out, 'agents', 'agent-2', 'thesis'))
    await rm(join(out, 'store'), { recursive: true })
    await symlink(elsewhere, join(out, 'store'))
    await expect(runFederation(tiny, { out, force: true })).rejects.toMatchObject({ ...refused, message: expect.stringContaining('"store"') })
    expect(await readdir(elsewhere)).toEqual(['thesis.tex'])
  })

  it('refuses an earlier run without --force, and replaces it with --force', async () => {
    const out = await tempDir()
    const first = await runFederation(tiny, { out })
    await expect(runFederation(tiny, { out })).rejects.toMatchObject(refused)
    // Half-written copies a run killed mid-write leaves go with it, and what agents that think write.
    await mkdir(join(out, 'agents', 'agent-1'), { recursive: true })
    for (const file of ['memory.json', 'memory.json.log', 'memory.json.tmp', 'paused.json', 'teacher-index.json', 'residual-2.safetensors', '.residual-3.safetensors.tmp']) await writeFile(join(out, 'agents', 'agent-1', file), '{')
    const block = (await readdir(join(out, 'store', 'blocks'), { recursive: true })).find(p => p.endsWith('.data')) as string
    await writeFile(join(out, 'store', 'blocks', dirname(block), `.${basename(block)}.tmp`), 'half')
    const second = await runFederation(tiny, { out, force: true })
    expect(second.modelHash).toBe(first.modelHash)
    expect(second.startedAt).not.toBe(first.startedAt)
    expect(await readdir(join(out, 'ledger'))).toEqual(['tangle.jsonl'])
    expect(JSON.parse(await readFile(join(out, 'report.json'), 'utf8'))).toMatchObject({ startedAt: second.startedAt })
  })

  it('replaces with --force what runs of every kind write: agents\' memory, a teacher\'s cache, compression\'s residuals', async () => {
    const out = await tempDir()
    const qa = { kind: 'qa', trainLimit: 120, testLimit: 20, features: 1024, hidden: 16, maxWords: 200 } as const
    await runFederation(smallConfig({ agents: 2, rounds: 1, quorum: 1, task: qa, teacher: { kind: 'dataset', budgetTokens: 200, maxTokens: 10 }, compression: { kind: 'topk', fraction: 0.1 } }), { out, driver: agentDriver() })
    const written = await tree(join(out, 'agents'))
    expect(written).toEqual(expect.arrayContaining([join('agent-1', 'memory.json'), join('agent-1', 'teacher-index.json'), expect.stringMatching(/residual-\d+\.safetensors$/)]))
    await runFederation(tiny, { out, force: true })
    expect(await readdir(out)).not.toContain('agents')
  })

  it('takes a directory that holds only the marker (a run killed as it began) without --force', async () => {
    const out = await tempDir()
    await writeFile(join(out, '.conclave-run'), JSON.stringify({ conclave: 'run', version: 1 }))
    await runFederation(tiny, { out })
    expect(await readdir(out)).toEqual(expect.arrayContaining(['.conclave-run', 'config.json', 'ledger', 'report.json']))
  })

  it('says how to start again a run killed before its first record, which --resume cannot continue, and that --force then takes it', async () => {
    const out = await tempDir()
    await writeFile(join(out, '.conclave-run'), JSON.stringify({ conclave: 'run', version: 1 }))
    await writeFile(join(out, 'config.json'), '{}')
    await expect(runFederation(tiny, { out, resume: true })).rejects.toMatchObject({ ...refused, message: expect.stringContaining('stopped before its first record: run it again with --config DIR/config.json --out DIR --force') })
    await runFederation(tiny, { out, force: true })
    expect(await readdir(out)).toEqual(expect.arrayContaining(['ledger', 'report.json']))
  })

  it('refuses to resume a run whose config.json was changed since it began (its first rounds ran by the old settings), changing nothing', async () => {
    const out = await tempDir()
    await runFederation(tiny, { out })
    const text = await readFile(join(out, 'config.json'), 'utf8')
    const report = await readFile(join(out, 'report.json'))
    await writeFile(join(out, 'config.json'), text.replace(/"seed": \d+/, '"seed": 43'))
    await expect(readRunConfig(out)).rejects.toMatchObject({ ...refused, message: expect.stringContaining('config.json changed since the run began') })
    await expect(runFederation(tiny, { out, resume: true })).rejects.toMatchObject(refused)
    expect(await readFile(join(out, 'report.json'))).toEqual(report)
    await writeFile(join(out, 'config.json'), text)
    expect((await readRunConfig(out)).seed).toBe(tiny.seed)
  })

  // Found red-teaming: --resume checked only the marker, config and ledger, and wrote its reports
  // with a plain write: a report.md replaced by a link to someone's file had that file overwritten.
  it('refuses to resume a run directory holding a link, a FIFO or a stray file, as --force does, and writes nowhere', async () => {
    const out = await tempDir()
    const elsewhere = await tempDir()
    const victim = join(elsewhere, 'thesis.tex')
    await writeFile(victim, 'mine')
    await runFederation(tiny, { out })
    const report = await readFile(join(out, 'report.json'))
    const plant = [
      { path: 'report.md', make: async (p: string) => { await rm(p); await symlink(victim, p) } },
      { path: 'report.json.tmp', make: async (p: string) => symlink(victim, p) },
      { path: 'agents/agent-1/memory.json', make: async (p: string) => { await mkdir(dirname(p), { recursive: true }); await symlink(victim, p) } },
      { path: 'store/datastore/version.data', make: async (p: string) => { await rm(p); await symlink(victim, p) } },
      { path: 'ledger/notes.txt', make: async (p: string) => writeFile(p, 'mine') },
      { path: 'votes.svg', make: async (p: string) => { await rm(p); execFileSync('mkfifo', [p]) } }
    ]
    for (const { path, make } of plant) {
      const full = join(out, path)
      const theirs = await readFile(full).catch(() => undefined)
      await make(full)
      const before = await tree(out)
      await expect(runFederation(tiny, { out, resume: true })).rejects.toMatchObject({ ...refused, message: expect.stringContaining(`"${path}"`) })
      expect(await readFile(victim, 'utf8')).toBe('mine')
      expect(await tree(out)).toEqual(before)
      expect(await readFile(join(out, 'report.json'))).toEqual(report)
      await rm(full)
      if (theirs !== undefined) await writeFile(full, theirs)
    }
    await runFederation(tiny, { out, resume: true })
    expect(await readFile(victim, 'utf8')).toBe('mine')
    expect((await lstat(join(out, 'report.md'))).isFile()).toBe(true)
  })

  it('takes with --force a run killed as it re-wrote its marker (the marker\'s half-written copy beside it)', async () => {
    const out = await tempDir()
    await writeFile(join(out, '.conclave-run'), JSON.stringify({ conclave: 'run', version: 1 }))
    await writeFile(join(out, '.conclave-run.tmp'), '{"conclave":"ru')
    await runFederation(tiny, { out, force: true })
    expect(await readdir(out)).not.toContain('.conclave-run.tmp')
  })

  it('takes with --force a run killed as it sealed its directory (the manifest\'s and the head\'s half-written copies beside them)', async () => {
    const out = await tempDir()
    await runFederation(tiny, { out })
    await writeFile(join(out, 'manifest.json.tmp'), '{"manif')
    await writeFile(join(out, 'head.json.tmp'), '{"he')
    await runFederation(tiny, { out, force: true })
    expect(await readdir(out)).not.toEqual(expect.arrayContaining(['manifest.json.tmp']))
    expect(await readdir(out)).not.toEqual(expect.arrayContaining(['head.json.tmp']))
  })

  it('refuses a marker it does not know (another format version) and a path that is a file', async () => {
    const out = await tempDir()
    await writeFile(join(out, '.conclave-run'), JSON.stringify({ conclave: 'run', version: 99 }))
    await mkdir(join(out, 'ledger'))
    await expect(runFederation(tiny, { out, force: true })).rejects.toMatchObject(refused)
    expect((await readdir(out)).sort()).toEqual(['.conclave-run', 'ledger'])
    const file = join(await tempDir(), 'a-file')
    await writeFile(file, 'x')
    await expect(runFederation(tiny, { out: file, force: true })).rejects.toMatchObject(refused)
    expect(await readFile(file, 'utf8')).toBe('x')
  })

  it('writes the config and the report readable by their owner only', async () => {
    const out = await tempDir()
    await runFederation(tiny, { out })
    for (const file of ['config.json', 'report.json']) expect((await stat(join(out, file))).mode & 0o777).toBe(0o600)
  })
})
