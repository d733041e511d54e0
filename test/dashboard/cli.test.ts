import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { capture } from '../federation/capture.ts'
import { tempDir } from '../federation/helpers.ts'
import { LedgerWriter, oneRound } from './ledger-writer.ts'

describe('conclave dashboard: the command', () => {
  it('serves DIR on 127.0.0.1 at the port given (0: any free one) until Ctrl-C, then exits 0', async () => {
    const dir = await tempDir('conclave-dashboard-cli-')
    const writer = await LedgerWriter.create(join(dir, 'ledger'))
    await oneRound(writer)
    await writer.close()
    const child = spawn(process.execPath, ['bin/conclave.js', 'dashboard', dir, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.setEncoding('utf8')
      child.stderr.on('data', (chunk: string) => {
        err += chunk
        const found = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(err)
        if (found?.[1] !== undefined) resolve(found[1])
      })
      child.once('exit', code => { reject(new Error(`exited ${code}: ${err}`)) })
    })
    const state = await (await fetch(`${url}api/state`)).json() as { proposals: unknown[], votes: unknown[] }
    expect([state.proposals.length, state.votes.length]).toEqual([3, 6])
    child.kill('SIGINT')
    const [code] = await once(child, 'exit') as [number]
    expect(code).toBe(0)
  })

  it('refuses bad input with a ConfigError and exit code 1', async () => {
    const dir = await tempDir('conclave-dashboard-cli-')
    for (const argv of [['dashboard'], ['dashboard', join(dir, 'missing')], ['dashboard', dir, '--port', 'eighty'], ['dashboard', dir, '--port', '70000'], ['run', '--port', '8787']]) {
      const result = await capture(argv)
      expect({ argv, code: result.code, error: /ConfigError/.test(result.err) }).toEqual({ argv, code: 1, error: true })
    }
  })
})
