import { lstat, mkdtemp, readdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseFlags } from '../../src/cli/flags.ts'
import { capture } from './capture.ts'
import { tinyDataset } from './helpers.ts'

describe('conclave CLI', () => {
  it('runs a federation on a bring-your-own dataset (--data), and audit --json prints the contract', async () => {
    const data = await tinyDataset()
    const out = join(await mkdtemp(join(tmpdir(), 'conclave-cli-')), 'run')
    const run = await capture(['run', '--agents', '3', '--rounds', '1', '--quorum', 'majority', '--data', data, '--out', out])
    expect(run.code).toBe(0)
    expect(run.out).toMatch(/audit ok/)
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as { rounds: Array<{ metric: { value: number } }> }
    expect(report.rounds.at(-1)?.metric.value).toBeGreaterThan(0.5)

    const audit = await capture(['audit', out, '--json'])
    expect(audit.code).toBe(0)
    expect(Object.keys(JSON.parse(audit.out) as object)).toEqual(['ok', 'records', 'proposals', 'votes', 'humanVotes', 'decisions', 'humanVotesCounted', 'humanVotesUncounted', 'modelHash', 'votesReplayed', 'firstFailure', 'rejected', 'head'])
    expect(run.out).toContain(`head ${(JSON.parse(audit.out) as { head: { id: string } }).head.id}`)
  })

  it('--compression topk:F merges by fedavg-sparse, unless the config file names an aggregation', async () => {
    const data = await tinyDataset()
    const root = await mkdtemp(join(tmpdir(), 'conclave-cli-'))
    const aggregationOf = async (dir: string): Promise<unknown> => (JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { aggregation: unknown }).aggregation
    const flagged = await capture(['run', '--agents', '3', '--rounds', '1', '--quorum', 'majority', '--data', data, '--compression', 'topk:0.2', '--out', join(root, 'a')])
    expect(flagged.code).toBe(0)
    expect(await aggregationOf(join(root, 'a'))).toBe('fedavg-sparse')
    const config = join(root, 'median.json')
    await writeFile(config, JSON.stringify({ aggregation: 'median' }))
    const named = await capture(['run', '--config', config, '--agents', '3', '--rounds', '1', '--quorum', 'majority', '--data', data, '--compression', 'topk:0.2', '--out', join(root, 'b')])
    expect(named.code).toBe(0)
    expect(await aggregationOf(join(root, 'b'))).toBe('median')
  })

  it('runs a baseline for another task on its own data (--task ner --data), and refuses unknown tasks', async () => {
    const data = await mkdtemp(join(tmpdir(), 'conclave-ner-'))
    const sentence = (i: number): string => `Aspirin\tB-Chemical\ncaused\tO\nulcer\tB-Disease\nin\tO\npatient\tO\n${i}\tO\n\n`
    await writeFile(join(data, 'train.conll'), Array.from({ length: 40 }, (_, i) => sentence(i)).join(''))
    await writeFile(join(data, 'test.conll'), Array.from({ length: 10 }, (_, i) => sentence(i)).join(''))
    const result = await capture(['baseline', 'fedavg', '--task', 'ner', '--data', data, '--agents', '2', '--rounds', '1', '--json'])
    expect(result.code).toBe(0)
    const report = JSON.parse(result.out) as { rounds: Array<{ metric: { name: string, value: number } }> }
    expect(report.rounds.at(-1)?.metric.name).toBe('entityF1')
    expect(report.rounds.at(-1)?.metric.value).toBeGreaterThan(0.5)
    expect((await capture(['baseline', 'fedavg', '--task', 'summarise'])).err).toMatch(/ConfigError/)
  })

  it('says so where a flag is given twice, and the last one counts (npm start -- --rounds 1 overrides the script\'s --rounds 3)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-cli-twice-'))
    const warned: string[] = []
    const flags = (args: string[]): unknown => parseFlags({ args, options: { rounds: { type: 'string' }, verbose: { type: 'boolean' }, tag: { type: 'string', multiple: true } }, strict: true }, line => { warned.push(line) }).values
    expect(flags(['--rounds', '3', '--rounds', '5'])).toEqual({ rounds: '5' })
    expect(flags(['--rounds=3', '--verbose', '--verbose'])).toEqual({ rounds: '3', verbose: true })
    // A flag meant to repeat repeats without a word.
    expect(flags(['--tag', 'a', '--tag', 'b'])).toEqual({ tag: ['a', 'b'] })
    expect(warned).toEqual(['conclave: --rounds given twice (3, then 5): the last one counts\n', 'conclave: --verbose given twice\n'])
    // Through the CLI: the warning on stderr, the last value used.
    const result = await capture(['init', '--out', join(dir, 'a.yaml'), '--out', join(dir, 'b.yaml')])
    expect(result.code).toBe(0)
    expect(result.err).toContain(`conclave: --out given twice (${join(dir, 'a.yaml')}, then ${join(dir, 'b.yaml')}): the last one counts`)
    expect(await readdir(dir)).toEqual(['b.yaml'])
  })

  it('gives clear errors and exit codes for bad input', async () => {
    expect((await capture(['run', '--agents', 'five'])).code).toBe(1)
    expect((await capture(['run', '--agents', '3', '--quorum', '3'])).err).toMatch(/ConfigError/)
    expect((await capture(['run', '--workers', '0'])).err).toMatch(/ConfigError/)
    expect((await capture(['run', '--phase-timing', 'exact'])).err).toMatch(/ConfigError.*--phase-timing takes innermost or precise/)
    expect((await capture(['run', '--bogus'])).code).toBe(2)
    expect((await capture(['audit', '/nonexistent/dir'])).err).toMatch(/ConfigError.*not a Conclave run directory/)
    expect((await capture(['frobnicate'])).code).toBe(2)
    expect((await capture(['run', '--llm', 'gpt-4'])).err).toMatch(/ConfigError[\s\S]*expected policy, ollama:<model> or gguf:<path/)
    expect((await capture(['run', '--agents', '2', '--quorum', '1', '--llm', 'gguf:/nonexistent/model.gguf', '--out', join(await mkdtemp(join(tmpdir(), 'conclave-cli-')), 'run')])).err)
      .toMatch(/gguf model \/nonexistent\/model.gguf does not exist; `npm run models:gemma`/)
    const bad = join(await mkdtemp(join(tmpdir(), 'conclave-cfg-')), 'bad.yaml')
    await writeFile(bad, 'agents: [1, 2\n')
    expect((await capture(['run', '--config', bad])).err).toMatch(/ConfigError/)
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]', ...'bcdef'.split('').map((name, i) => `${name}: &${name} [${Array(9).fill(`*${'abcdef'[i]}`).join(', ')}]`), 'g: [*f, *f, *f, *f, *f, *f, *f, *f, *f]']
    await writeFile(bad, levels.join('\n') + '\n')
    expect((await capture(['run', '--config', bad])).err).toMatch(/ConfigError.*not valid YAML \(aliases that would expand/)
  })

  it('init writes a config that run accepts unchanged', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'conclave-init-')), 'conclave.yaml')
    expect((await capture(['init', '--out', file])).code).toBe(0)
    const { readConfigFile, parseRunConfig } = await import('../../src/federation/config.ts')
    expect(parseRunConfig(await readConfigFile(file))).toEqual(parseRunConfig({}))
    expect((await capture(['init', '--out', file])).code).toBe(1)
  })

  // Found red-teaming: init checked the path with access(), which follows a link and finds nothing
  // at a dangling one, then wrote through it: the link's target was created.
  it('init refuses a link at its path, dangling or not, and writes nowhere', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-init-'))
    const target = join(dir, 'never-existed.sh')
    await symlink(target, join(dir, 'conclave.yaml'))
    const result = await capture(['init', '--out', join(dir, 'conclave.yaml')])
    expect(result.code).toBe(1)
    expect(result.err).toMatch(/ConfigError.*conclave\.yaml exists; not overwriting it/)
    expect((await readdir(dir)).sort()).toEqual(['conclave.yaml'])
    expect((await lstat(join(dir, 'conclave.yaml'))).isSymbolicLink()).toBe(true)
  })

  // Found red-teaming: the flags were spread into the file's agent section before the schema saw it,
  // so `agent: true` ran with the defaults and `agent: autopilot` was refused as keys "0" to "8".
  it('refuses an agent section that is not a mapping, in run and agent alike, as the schema words it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-cfg-'))
    await writeFile(join(dir, 'flag.yaml'), 'agent: true\n')
    const run = await capture(['run', '--autopilot', '--config', join(dir, 'flag.yaml'), '--agents', '2', '--rounds', '1', '--quorum', '1', '--data', await tinyDataset(), '--out', join(dir, 'run')])
    expect(run.code).toBe(1)
    expect(run.err).toMatch(/ConfigError[\s\S]*expected object, received boolean\s+→ at agent/)
    const did = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'
    await writeFile(join(dir, 'word.yaml'), `member: 1\nmembers: [${did}, ${did.replace('K', 'L')}]\nkey: k.json\ndir: d\nagent: autopilot\n`)
    const member = await capture(['agent', '--autopilot', '--config', join(dir, 'word.yaml')])
    expect(member.code).toBe(1)
    expect(member.err).toMatch(/ConfigError[\s\S]*expected object, received string\s+→ at agent/)
  })
})
