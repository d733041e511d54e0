import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { describe, expect, it, vi } from 'vitest'
import { consoleLogger } from '../../src/core/logger.ts'
import { parseRunConfig } from '../../src/federation/config.ts'
import { runFederation, writeReport, writeRunConfig } from '../../src/federation/run.ts'
import { smallConfig, tempDir } from './helpers.ts'

const TOKEN = 'syt_c2VjcmV0_TOKEN_never_on_disk_4Xz'
const AGENT_TOKEN = 'syt_YWdlbnQy_AGENT_TOKEN_never_on_disk_9Qw'
const REGISTRATION = 'registration-shared-secret-never-on-disk-7Rt'
const SECRETS = [TOKEN, AGENT_TOKEN, REGISTRATION]
const withToken = parseRunConfig({
  bus: {
    kind: 'matrix', baseUrl: 'http://127.0.0.1:8008', userId: '@conclave:localhost', accessToken: TOKEN,
    accounts: [{ userId: '@a1:localhost' }, { userId: '@a2:localhost', accessToken: AGENT_TOKEN }], registrationSecret: REGISTRATION
  }
})

/** Every file under `dir`, recursively, as text. */
async function everyFile (dir: string): Promise<Array<{ path: string, text: string }>> {
  const names = await readdir(dir, { recursive: true, withFileTypes: true })
  return Promise.all(names.filter(e => e.isFile()).map(async e => ({ path: join(e.parentPath, e.name), text: await readFile(join(e.parentPath, e.name), 'latin1') })))
}

describe('secrets in the config never reach a file or a log', () => {
  it('config.json, report.json and report.md of a run hold no access token', async () => {
    const out = await tempDir()
    const report = await runFederation(smallConfig({ agents: 2, rounds: 1, quorum: 1, agent: { driver: 'autopilot' }, task: { kind: 'classify', trainLimit: 200, testLimit: 100, features: 512 } }), { out, force: false })
    await writeRunConfig(out, withToken)
    await writeReport(out, { ...report, config: withToken as unknown as Record<string, unknown> })
    const leaks = (await everyFile(out)).filter(f => SECRETS.some(secret => f.text.includes(secret))).map(f => f.path)
    expect(leaks).toEqual([])
    const written = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as { bus: Record<string, unknown> }
    expect(written.bus).toMatchObject({ accessToken: '[redacted]', accounts: [{ userId: '@a1:localhost' }, { userId: '@a2:localhost', accessToken: '[redacted]' }], registrationSecret: '[redacted]' })
  })

  it('a logged or printed config shows [redacted] in place of the token', () => {
    let err = ''
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => { err += String(c); return true })
    try {
      consoleLogger.info('starting', { config: withToken })
      consoleLogger.warn(`bus ${JSON.stringify(withToken.bus)} token ${String(withToken.bus.kind === 'matrix' ? withToken.bus.accessToken : '')}`)
    } finally {
      spy.mockRestore()
    }
    for (const secret of SECRETS) {
      expect(err).not.toContain(secret)
      expect(inspect(withToken, { depth: 10 })).not.toContain(secret)
    }
    expect(err).toContain('[redacted]')
  })

  it('a written config read back has no token or secret (they come from the environment again), and the secrets themselves are kept for the bus', () => {
    const again = parseRunConfig(JSON.parse(JSON.stringify(withToken)))
    expect(again.bus).toEqual({ kind: 'matrix', baseUrl: 'http://127.0.0.1:8008', userId: '@conclave:localhost', accounts: [{ userId: '@a1:localhost' }, { userId: '@a2:localhost' }], public: false })
    const bus = withToken.bus.kind === 'matrix' ? withToken.bus : undefined
    expect([bus?.accessToken?.reveal(), bus?.accounts?.[1]?.accessToken?.reveal(), bus?.registrationSecret?.reveal()]).toEqual(SECRETS)
  })

  it('refuses credentials inside a service URL, where they would be written down with it', () => {
    for (const config of [
      { store: { kind: 'kubo', url: 'http://user:pw@127.0.0.1:5001' } },
      { bus: { kind: 'matrix', baseUrl: 'http://user:pw@127.0.0.1:8008', userId: '@a:b' } },
      { task: { kind: 'qa' }, teacher: { kind: 'ollama', model: 'm', url: 'http://u:p@127.0.0.1:11434' } },
      { ledger: { kind: 'iota', url: 'https://alice:S3CRET@127.0.0.1:9000/', packageId: '0x1' } }
    ]) expect(() => parseRunConfig(config)).toThrow(expect.objectContaining({ name: 'ConfigError', code: 'ERR_CONFIG' }))
  })

  it('refuses a query or fragment in a service URL, where a proxy token would be written down with it', () => {
    for (const config of [
      { store: { kind: 'kubo', url: 'http://127.0.0.1:5001/?token=S3CRET' } },
      { store: { kind: 'kubo', url: 'http://127.0.0.1:5001/#S3CRET' } },
      { bus: { kind: 'matrix', baseUrl: 'http://127.0.0.1:8008?access_token=S3CRET', userId: '@a:b' } },
      { ledger: { kind: 'iota', url: 'https://127.0.0.1:9000/?apikey=S3CRET', packageId: '0x1' } }
    ]) expect(() => parseRunConfig(config)).toThrow(expect.objectContaining({ name: 'ConfigError', code: 'ERR_CONFIG' }))
    expect(parseRunConfig({ store: { kind: 'kubo', url: 'http://127.0.0.1:5001/kubo/' } }).store).toEqual({ kind: 'kubo', url: 'http://127.0.0.1:5001/kubo/' })
  })
})
