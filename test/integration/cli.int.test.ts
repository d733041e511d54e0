import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseRunConfig } from '../../src/federation/config.ts'
import { preflight } from '../../src/federation/preflight.ts'
import { BusConfig, createBus } from '../../src/transport/index.ts'
import { capture } from '../federation/capture.ts'
import { newMatrixUser, registrationSecret, synapseUrl, uniqueName } from './synapse.ts'

const kuboUrl = `http://127.0.0.1:${process.env.KUBO_API_PORT ?? '5001'}`
const ollamaUrl = `http://127.0.0.1:${process.env.OLLAMA_PORT ?? '11434'}`

/** The paths of the files under `dir` whose bytes contain `text`. */
async function filesHolding (dir: string, text: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  const files = entries.filter(e => e.isFile()).map(e => join(e.parentPath, e.name))
  const hits = await Promise.all(files.map(async f => (await readFile(f, 'latin1')).includes(text) ? f : undefined))
  return hits.filter(f => f !== undefined)
}

describe('the CLI against the real services', () => {
  it('preflight finds the homeserver, kubo and Ollama up', async () => {
    const account = await newMatrixUser('preflight')
    const config = parseRunConfig({
      bus: { kind: 'matrix', baseUrl: synapseUrl, userId: account.userId, accessToken: account.accessToken },
      store: { kind: 'kubo', url: kuboUrl },
      task: { kind: 'qa' },
      teacher: { kind: 'ollama', model: 'conclave-gemma3', url: ollamaUrl }
    })
    await expect(preflight(config)).resolves.toBeUndefined()
  })

  it('a token the homeserver refuses is a ConfigError, not a crash', async () => {
    const account = await newMatrixUser('refused')
    const config = BusConfig.parse({ kind: 'matrix', baseUrl: synapseUrl, userId: account.userId, accessToken: 'syt_not_a_token_it_issued' })
    await expect(createBus(config)).rejects.toMatchObject({ name: 'ConfigError', code: 'ERR_CONFIG' })
  })

  it('conclave run on a Matrix bus: its agents\' tokens and the registration secret are in no file of the run directory and in no output', async () => {
    const accounts = [await newMatrixUser('cli'), await newMatrixUser('cli')]
    const secret = registrationSecret()
    const root = await mkdtemp(join(tmpdir(), 'conclave-cli-secret-'))
    const config = join(root, 'conclave.json')
    await writeFile(config, JSON.stringify({
      federation: uniqueName('fed'), task: { kind: 'classify', trainLimit: 300, testLimit: 100 },
      // agent-1 and agent-2 by token, agent-3 registered through the shared secret
      bus: { kind: 'matrix', baseUrl: synapseUrl, accounts, registrationSecret: secret }
    }))
    const out = join(root, 'run')
    const result = await capture(['run', '--config', config, '--out', out, '--agents', '3', '--rounds', '1', '--quorum', '1', '--verbose'])
    expect(result.code).toBe(0)
    for (const secretText of [...accounts.map(a => a.accessToken), secret]) {
      expect(await filesHolding(out, secretText)).toEqual([])
      expect(result.out + result.err).not.toContain(secretText)
    }
    for (const file of ['config.json', 'report.json']) expect((await stat(join(out, file))).mode & 0o777).toBe(0o600)
    expect(JSON.parse(await readFile(join(out, 'config.json'), 'utf8'))).toMatchObject({ bus: { accounts: accounts.map(a => ({ userId: a.userId, accessToken: '[redacted]' })), registrationSecret: '[redacted]' } })
  }, 300_000)
})
