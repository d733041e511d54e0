import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { beforeAll, describe, expect, it } from 'vitest'
import { readRunConfig } from '../../src/federation/run.ts'
import { tempDir } from './helpers.ts'

const BIN = join(import.meta.dirname, '../../bin/conclave.js')
/** 27 records: the charter, then per round 3 proposals, 6 votes, 3 decisions and a checkpoint. */
const CONFIG = `agents: 3
rounds: 2
seed: 7
quorum: majority
ledger: { kind: tangle, difficulty: 4 }
task: { kind: classify, trainLimit: 900, testLimit: 400, features: 2048 }
agent: { driver: autopilot }
`

interface Ended { code: number | null, signal: NodeJS.Signals | null }

/** `conclave ARGS` as its own process; `whenRecords` kills it with SIGKILL once its ledger holds that many records. */
async function conclave (args: string[], kill?: { dir: string, whenRecords: number }): Promise<Ended> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' })
  const ended = new Promise<Ended>(resolve => child.on('exit', (code, signal) => { resolve({ code, signal }) }))
  if (kill !== undefined) {
    let done = false
    void ended.then(() => { done = true })
    while (!done && await records(kill.dir) < kill.whenRecords) await sleep(10)
    child.kill('SIGKILL')
  }
  return ended
}

/** Records anchored in a run directory's tangle (its first line is the file's header). */
async function records (dir: string): Promise<number> {
  const text = await readFile(join(dir, 'ledger', 'tangle.jsonl'), 'utf8').catch(() => '')
  return Math.max(0, text.split('\n').filter(Boolean).length - 1)
}

async function finalReport (dir: string): Promise<{ modelHash: string, audit: { ok: boolean, records: number } }> {
  return JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as { modelHash: string, audit: { ok: boolean, records: number } }
}

describe('conclave run --resume', () => {
  let root: string
  let config: string
  let whole: string
  beforeAll(async () => {
    root = await tempDir()
    config = join(root, 'run.yaml')
    await writeFile(config, CONFIG)
    whole = join(root, 'whole')
    expect(await conclave(['run', '--config', config, '--out', whole])).toEqual({ code: 0, signal: null })
  })

  it('continues a run killed at any moment to the model an uninterrupted run of the same seed ends with', async () => {
    const reference = await finalReport(whole)
    expect(reference.audit).toMatchObject({ ok: true, records: 27 })
    // while round 1's proposals and votes arrive, around its decisions and checkpoint, and in round 2
    for (const whenRecords of [4, 12, 20]) {
      const dir = join(root, `killed-at-${whenRecords}`)
      expect(await conclave(['run', '--config', config, '--out', dir], { dir, whenRecords })).toEqual({ code: null, signal: 'SIGKILL' })
      const killedAt = await records(dir)
      expect(killedAt).toBeGreaterThanOrEqual(whenRecords)
      expect(killedAt).toBeLessThan(27)
      expect(await conclave(['run', '--resume', dir])).toEqual({ code: 0, signal: null })
      expect(await finalReport(dir)).toMatchObject({ modelHash: reference.modelHash, audit: { ok: true, records: 27 } })
    }
  })

  it('refuses a directory that holds no run, and flags that would change the run it continues, changing nothing', async () => {
    await expect(readRunConfig(await tempDir())).rejects.toMatchObject({ name: 'RunDirectoryError', code: 'ERR_RUN_DIRECTORY' })
    const before = await readFile(join(whole, 'report.json'))
    expect(await conclave(['run', '--resume', whole, '--seed', '8'])).toEqual({ code: 1, signal: null })
    expect(await readFile(join(whole, 'report.json'))).toEqual(before)
  })
})
