import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { describe, expect, it, vi } from 'vitest'
import { consoleLogger } from '../../src/core/logger.ts'
import { parseRunConfig } from '../../src/federation/config.ts'
import { runFederation, writeReport, writeRunConfig } from '../../src/federation/run.ts'
import { smallConfig, tempDir } from './helpers.ts'

const TOKEN = 'syt_c2VjcmV0_TOKEN_never_on_disk_4Xz'
const withToken = parseRunConfig({ bus: { kind: 'matrix', baseUrl: 'http://127.0.0.1:8008', userId: '@conclave:localhost', accessToken: TOKEN } })

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
    const leaks = (await everyFile(out)).filter(f => f.text.includes(TOKEN)).map(f => f.path)
    expect(leaks).toEqual([])
    const written = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as { bus: { accessToken: string } }
    expect(written.bus.accessToken).toBe('[redacted]')
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
    expect(err).not.toContain(TOKEN)
    expect(err).toContain('[redacted]')
    expect(inspect(withToken, { depth: 10 })).not.toContain(TOKEN)
  })

  it('a written config read back has no token (it comes from CONCLAVE_MATRIX_TOKEN again), and the token itself is kept for the bus', () => {
    const again = parseRunConfig(JSON.parse(JSON.stringify(withToken)))
    expect(again.bus).toEqual({ kind: 'matrix', baseUrl: 'http://127.0.0.1:8008', userId: '@conclave:localhost' })
    expect(withToken.bus.kind === 'matrix' ? withToken.bus.accessToken?.reveal() : undefined).toBe(TOKEN)
  })

  it('refuses credentials inside a service URL, where they would be written down with it', () => {
    for (const config of [
      { store: { kind: 'kubo', url: 'http://user:pw@127.0.0.1:5001' } },
      { bus: { kind: 'matrix', baseUrl: 'http://user:pw@127.0.0.1:8008', userId: '@a:b' } },
      { task: { kind: 'qa' }, teacher: { kind: 'ollama', model: 'm', url: 'http://u:p@127.0.0.1:11434' } }
    ]) expect(() => parseRunConfig(config)).toThrow(expect.objectContaining({ name: 'ConfigError', code: 'ERR_CONFIG' }))
  })
})
