import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { stringify as toYaml } from 'yaml'
import { MAX_ALPHA } from '../../src/data/partition.ts'
import { parseConfigText, parseRunConfig, type RunConfig } from '../../src/federation/config.ts'
import { parseMemberConfig } from '../../src/federation/member.ts'

const DID = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'
const runs = { seed: 1414, numRuns: 400 }

/** Parsing either succeeds or throws ConfigError: never a TypeError, a zod error or a crash. */
function onlyConfigErrors (parse: () => unknown): boolean {
  try {
    parse()
    return true
  } catch (err) {
    if (err instanceof Error && err.name === 'ConfigError') return true
    throw err
  }
}

/** Settings `conclave run` accepts: every section, with the variants each can take. */
const validInput = fc.record({
  federation: fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/),
  agents: fc.integer({ min: 2, max: 8 }),
  rounds: fc.integer({ min: 1, max: 20 }),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  quorum: fc.constantFrom<unknown>('majority', 1, '0.5', 0.5, { kind: 'fraction', fraction: 1 }, { kind: 'count', count: 1 }, { kind: 'majority' }),
  windowSeconds: fc.integer({ min: 1, max: 86_400 }),
  tolerance: fc.integer({ min: 0, max: 100 }).map(n => n / 100),
  voteScale: fc.constantFrom('full', 'share'),
  evalSplit: fc.constantFrom('test', 'dev'),
  partition: fc.record({ kind: fc.constantFrom('iid', 'dirichlet'), alpha: fc.integer({ min: 1, max: 100 }).map(n => n / 10) }, { requiredKeys: [] }),
  aggregation: fc.constantFrom('fedavg', 'median', 'trimmed-mean', 'krum'),
  momentum: fc.integer({ min: 0, max: 99 }).map(n => n / 100),
  task: fc.oneof(fc.constant({ kind: 'classify' }), fc.constant({ kind: 'ner', crf: false }), fc.constant({ kind: 'qa' })),
  teacher: fc.oneof(fc.constant({ kind: 'dataset' }), fc.record({ kind: fc.constant('ollama'), model: fc.constantFrom('llama3.1:8b', 'conclave-gemma3'), url: fc.webUrl() })),
  store: fc.oneof(fc.constant({ kind: 'helia' }), fc.record({ kind: fc.constant('kubo'), url: fc.webUrl() })),
  ledger: fc.oneof(fc.constant({ kind: 'tangle' }), fc.record({ kind: fc.constant('tangle'), difficulty: fc.integer({ min: 0, max: 24 }) })),
  bus: fc.oneof(
    fc.constant({ kind: 'local' }),
    fc.record({ kind: fc.constant('matrix'), baseUrl: fc.webUrl(), userId: fc.constant('@conclave:localhost'), accessToken: fc.string({ minLength: 8, maxLength: 40 }).map(s => `syt_${s}`) }, { requiredKeys: ['kind', 'baseUrl', 'userId'] })
  ),
  agent: fc.record({ driver: fc.constantFrom('agents', 'autopilot'), llm: fc.constantFrom('policy', 'ollama:llama3.1:8b'), maxSteps: fc.integer({ min: 1, max: 64 }) }, { requiredKeys: [] })
}, { requiredKeys: [] })

/** Every place a config can be damaged: each top-level key and the nested ones. */
const PATHS = [
  ['federation'], ['agents'], ['rounds'], ['seed'], ['quorum'], ['quorum', 'kind'], ['windowSeconds'], ['tolerance'], ['relativeTolerance'],
  ['voteScale'], ['evalSplit'], ['partition'], ['partition', 'kind'], ['partition', 'alpha'], ['aggregation'], ['momentum'],
  ['task'], ['task', 'kind'], ['task', 'data'], ['task', 'features'], ['teacher'], ['teacher', 'kind'], ['teacher', 'url'], ['teacher', 'maxTokens'],
  ['store'], ['store', 'kind'], ['store', 'url'], ['ledger'], ['ledger', 'kind'], ['ledger', 'difficulty'],
  ['bus'], ['bus', 'kind'], ['bus', 'baseUrl'], ['bus', 'userId'], ['bus', 'accessToken'], ['attacks'], ['attacks', '0'], ['attacks', '0', 'agent'],
  ['agent'], ['agent', 'driver'], ['agent', 'llm'], ['agent', 'tools'], ['agent', 'maxSteps'], ['__proto__'], ['constructor'], ['unknown']
]

/** `input` with the value at `path` replaced (or removed, for undefined), made and filled where missing. */
function mutate (input: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(input)
  let node: Record<string, unknown> = copy
  for (const key of path.slice(0, -1)) {
    const next = node[key]
    if (typeof next !== 'object' || next === null) Object.defineProperty(node, key, { value: {}, enumerable: true, writable: true, configurable: true })
    node = node[key] as Record<string, unknown>
  }
  const last = path.at(-1) as string
  if (value === undefined) delete node[last]
  else Object.defineProperty(node, last, { value, enumerable: true, writable: true, configurable: true })
  return copy
}

/** A config with its secrets taken out: what it reads as once written down. */
function withoutSecrets (config: RunConfig): RunConfig {
  if (config.bus.kind !== 'matrix') return config
  const { accessToken: _token, ...bus } = config.bus
  return { ...config, bus }
}

describe('config parsing under fuzzing: nothing but ConfigError, and valid configs round-trip', () => {
  it('any JSON value, or any value at all, as a run config', () => {
    fc.assert(fc.property(fc.oneof(fc.jsonValue(), fc.anything()), value => onlyConfigErrors(() => parseRunConfig(value))), runs)
  })

  it('a valid config with one setting replaced by anything, or removed', () => {
    const damage = fc.tuple(validInput, fc.constantFrom(...PATHS), fc.oneof(fc.jsonValue(), fc.constant(undefined), fc.string(), fc.double()))
    fc.assert(fc.property(damage, ([input, path, value]) => onlyConfigErrors(() => parseRunConfig(mutate(input, path, value)))), runs)
  })

  it('any text, and a valid config\'s YAML with characters flipped, dropped or inserted, as a config file', () => {
    const edit = fc.record({ at: fc.nat(), kind: fc.constantFrom('drop', 'insert', 'replace'), char: fc.constantFrom(':', ' ', '\n', '{', '[', '-', '"', '&', '*', '!', '#', '\t', 'x', '9') })
    const damagedYaml = fc.tuple(validInput, fc.array(edit, { minLength: 1, maxLength: 6 })).map(([input, edits]) => edits.reduce((text, e) => {
      const i = e.at % (text.length + 1)
      return text.slice(0, i) + (e.kind === 'drop' ? '' : e.char) + text.slice(e.kind === 'insert' ? i : i + 1)
    }, toYaml(input)))
    fc.assert(fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), damagedYaml), text => onlyConfigErrors(() => parseRunConfig(parseConfigText(text, 'fuzz.yaml')))), runs)
  })

  it('a config file whose YAML is broken names where, never what: no secret on a line near the fault reaches the error', () => {
    const SECRET = 'syt_SUPERSECRET_TOKEN_123'
    const lines = ['bus:', '  kind: matrix', '  baseUrl: http://127.0.0.1:8008', '  userId: "@conclave:localhost"', `  accessToken: ${SECRET}`, `  registrationSecret: ${SECRET}`, '  public: false']
    const broken = fc.record({ line: fc.nat({ max: lines.length - 1 }), damage: fc.constantFrom('   ', '\t', ': :', '[', '{', '"', '&', '*x', '!!bad ', '- ') })
    fc.assert(fc.property(broken, ({ line, damage }) => {
      const text = lines.map((l, i) => i === line ? damage + l : l).join('\n')
      let message = ''
      try {
        parseRunConfig(parseConfigText(text, 'secret.yaml'))
      } catch (err) {
        for (let e: unknown = err; e instanceof Error; e = e.cause) message += `${e.message}\n${e.stack ?? ''}\n`
      }
      return !message.includes('SUPERSECRET')
    }), runs)
  })

  it('any value, or a damaged valid one, as a member config', () => {
    const member = validInput.map(input => ({ ...input, member: 1, members: [DID, DID.replace('K', 'L')], key: 'k.json', dir: 'd' }))
    const damaged = fc.tuple(member, fc.constantFrom(...PATHS, ['member'], ['members'], ['members', '1'], ['key'], ['dir'], ['joinSeconds']), fc.oneof(fc.jsonValue(), fc.constant(undefined)))
      .map(([input, path, value]) => mutate(input, path, value))
    fc.assert(fc.property(fc.oneof(fc.anything(), damaged), value => onlyConfigErrors(() => parseMemberConfig(value, '/tmp'))), runs)
  })

  it('a valid config written as JSON or YAML parses back to itself, its secrets absent', () => {
    fc.assert(fc.property(validInput, fc.boolean(), (input, yaml) => {
      const config = parseRunConfig(input)
      const written = JSON.stringify(config)
      const again = parseRunConfig(yaml ? parseConfigText(toYaml(JSON.parse(written)), 'written.yaml') : JSON.parse(written))
      expect(again).toEqual(withoutSecrets(config))
      if (input.bus?.kind === 'matrix' && input.bus.accessToken !== undefined) expect(written).not.toContain(input.bus.accessToken)
    }), runs)
  })

  // Found red-teaming: from α ≈ 3.6e307 the gamma draws sum to Infinity and a 1000-example set split [1, 1, 1, 1, 996].
  it('a Dirichlet α above MAX_ALPHA is refused; MAX_ALPHA parses', () => {
    for (const alpha of [MAX_ALPHA + 1, 3.6e307, Number.MAX_VALUE]) expect(() => parseRunConfig({ partition: { kind: 'dirichlet', alpha } })).toThrow(expect.objectContaining({ name: 'ConfigError', code: 'ERR_CONFIG' }))
    expect(parseRunConfig({ partition: { kind: 'dirichlet', alpha: MAX_ALPHA } }).partition).toEqual({ kind: 'dirichlet', alpha: MAX_ALPHA })
  })

  it('an acceptance setting the chosen rule does not read is refused, naming it and the rules that read it; one it reads parses', () => {
    // Which rule reads which setting, as src/federation/acceptance.ts builds each rule.
    const readBy: Record<string, { value: unknown, rules: string[] }> = {
      minGain: { value: 0.2, rules: ['improve', 'marginal', 'classwise', 'standing', 'probation'] },
      classRatio: { value: 2, rules: ['classwise', 'standing', 'probation'] },
      probationGain: { value: 0.3, rules: ['probation'] },
      gainingVouchers: { value: true, rules: ['probation'] },
      badOnProbation: { value: true, rules: ['probation'] },
      probationOnce: { value: true, rules: ['probation'] },
      minSharpening: { value: 0.4, rules: ['probation'] },
      sharpeningYardstick: { value: 'round', rules: ['probation'] },
      minMovement: { value: 0.5, rules: ['probation'] },
      strikes: { value: 2, rules: ['standing', 'probation'] }
    }
    const rules = ['tolerance', 'improve', 'marginal', 'classwise', 'standing', 'probation']
    fc.assert(fc.property(fc.constantFrom(...rules), fc.constantFrom(...Object.keys(readBy)), (rule, setting) => {
      const { value, rules: readers } = readBy[setting] as { value: unknown, rules: string[] }
      const parse = (): RunConfig => parseRunConfig({ federation: 'f', agents: 5, acceptance: rule, [setting]: value })
      if (readers.includes(rule)) expect(parse()[setting as keyof RunConfig]).toEqual(value)
      else expect(parse).toThrow(`${setting} applies to the ${readers.length > 1 ? `${readers.slice(0, -1).join(', ')} and ${readers.at(-1) as string} rules` : `${readers[0] as string} rule`}, not to ${rule}\n  → at ${setting}`)
    }), { seed: 1415, numRuns: 200 })
  })
})
