import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadOrCreateKeystore } from '../../src/identity/index.ts'
import { tempDir } from './helpers.ts'

const BIN = join(import.meta.dirname, '../../bin/conclave.js')

describe('conclave agent on SIGTERM or SIGINT', () => {
  it.each(['SIGTERM'] as const)('%s (SIGINT takes the same path): stops cleanly with exit 0 and one line saying so, no stack', async (signal) => {
    const root = await tempDir()
    const members = await Promise.all([1, 2].map(async i => (await loadOrCreateKeystore(join(root, `agent-${i}.key.json`))).did))
    const config = join(root, 'agent-1.json')
    await writeFile(config, JSON.stringify({ member: 1, members, key: 'agent-1.key.json', dir: 'agent-1', quorum: 1, agent: { driver: 'autopilot' }, task: { kind: 'classify', trainLimit: 200, testLimit: 100, features: 256 } }))
    const child = spawn(process.execPath, [BIN, 'agent', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] })
    let err = ''
    let out = ''
    let sent = false
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    // Member 1 waits for member 2, who never comes: stopped while it waits.
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString()
      if (err.includes('waiting for') && !sent) sent = child.kill(signal)
    })
    const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
    const after = err.slice(err.indexOf('waiting for')).split('\n').filter(Boolean).slice(1)
    expect({ code, out, after }).toEqual({ code: 0, out: '', after: [expect.stringMatching(new RegExp(`agent-1 stopped on ${signal}`))] })
  })
})
