import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { beforeAll, describe, expect, it } from 'vitest'
import { Rng } from '../../src/data/rng.ts'
import { lockRunDir } from '../../src/federation/dir-lock.ts'
import { readRunConfig } from '../../src/federation/run.ts'
import { tempDir } from './helpers.ts'

const BIN = join(import.meta.dirname, '../../bin/conclave.js')
/** 27 records: the charter, then per round 3 proposals, 6 votes, 3 decisions and a checkpoint. */
const RECORDS = 27
const CONFIG = `agents: 3
rounds: 2
seed: 7
quorum: majority
ledger: { kind: tangle, difficulty: 4 }
task: { kind: classify, trainLimit: 300, testLimit: 200, features: 512 }
`
/**
 * Both drivers: the autopilot, and LangGraph agents (the policy model) with their memory
 * files; and the autopilot under topk compression, whose members keep what they did not send.
 */
const DRIVERS = [
  { driver: 'autopilot', config: `${CONFIG}agent: { driver: autopilot }\n`, seed: 1 },
  { driver: 'autopilot under topk', config: `${CONFIG}agent: { driver: autopilot }\ncompression: { kind: topk, fraction: 0.1 }\n`, seed: 3 },
  { driver: 'agents', config: CONFIG, seed: 2 }
] as const

/**
 * Seeded random kill moments, one in each third of the run (round 1's proposals and votes;
 * its decisions, checkpoint and round 2's first proposals; the rest): a random record count,
 * then a random delay, so the kill lands inside whatever runs then (training, evaluating,
 * between a proposal and its votes, a checkpoint, an agent's memory write).
 */
function killMoments (seed: number): Array<{ records: number, delayMs: number }> {
  const rng = new Rng(seed)
  return [[1, 9], [10, 18], [19, 26]].map(([lo = 0, hi = 0]) => ({ records: lo + rng.int(hi - lo + 1), delayMs: rng.int(400) }))
}

interface Ended { code: number | null, signal: NodeJS.Signals | null }

/** What `conclave` printed, by the command's arguments (one run per argument list in these tests). */
const printed = new Map<string, string>()

/** `conclave ARGS` as its own process; `kill` sends it SIGKILL `delayMs` after its ledger holds `records` records. */
async function conclave (args: string[], kill?: { dir: string, records: number, delayMs: number }): Promise<Ended> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stdout.on('end', () => printed.set(args.join(' '), out))
  const ended = new Promise<Ended>(resolve => child.on('close', (code, signal) => { resolve({ code, signal }) })) // after its output ended
  if (kill !== undefined) {
    let done = false
    void ended.then(() => { done = true })
    while (!done && await records(kill.dir) < kill.records) await sleep(10)
    await sleep(kill.delayMs)
    child.kill('SIGKILL')
  }
  return ended
}

/** Records anchored in a run directory's tangle (its first line is the file's header). */
async function records (dir: string): Promise<number> {
  const text = await readFile(join(dir, 'ledger', 'tangle.jsonl'), 'utf8').catch(() => '')
  return Math.max(0, text.split('\n').filter(Boolean).length - 1)
}

/** What report.json says of the final model, and of the audit of the whole directory (ledger, store, manifest, signed head). */
async function finalReport (dir: string): Promise<{ modelHash: string, audit: { ok: boolean, records: number } }> {
  const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as { modelHash: string, audit: { ok: boolean, records: number } }
  return { modelHash: report.modelHash, audit: { ok: report.audit.ok, records: report.audit.records } }
}

describe.each(DRIVERS)('conclave run --resume, $driver', ({ driver, config: text, seed }) => {
  let root: string
  let config: string
  let reference: Awaited<ReturnType<typeof finalReport>>
  beforeAll(async () => {
    root = await tempDir()
    config = join(root, 'run.yaml')
    await writeFile(config, text)
    expect(await conclave(['run', '--config', config, '--out', join(root, 'whole')])).toEqual({ code: 0, signal: null })
    reference = await finalReport(join(root, 'whole'))
    expect(reference.audit).toEqual({ ok: true, records: RECORDS })
  })

  // Side by side, each in its own directory: on a busy machine the moments take turns anyway.
  it.concurrent.for(killMoments(seed))('killed by SIGKILL $delayMs ms after record $records, it resumes to the model of the run never stopped, and its directory audits', { timeout: 300_000 }, async (moment, { expect }) => {
    const dir = join(root, `killed-${moment.records}-${moment.delayMs}`)
    expect(await conclave(['run', '--config', config, '--out', dir], { dir, ...moment })).toEqual({ code: null, signal: 'SIGKILL' })
    expect(await records(dir)).toBeGreaterThanOrEqual(moment.records)
    expect(await conclave(['run', '--resume', dir])).toEqual({ code: 0, signal: null })
    expect(await finalReport(dir)).toEqual(reference)
    // The head to keep, with the directory it checks: the one resumed.
    expect(printed.get(`run --resume ${dir}`)).toContain(`conclave audit ${dir} --head `)
  })

  if (driver === 'autopilot') {
    it('refuses a second process on a directory a run is writing (a resume, or a new run with --force), and the run goes on to its model', async () => {
      const dir = join(root, 'busy')
      const long = join(root, 'long.yaml')
      await writeFile(long, text.replace('rounds: 2', 'rounds: 30')) // long enough to outlast two other processes' start
      const first = conclave(['run', '--config', long, '--out', dir])
      while (await records(dir) < 3) await sleep(10)
      expect(await conclave(['run', '--resume', dir])).toEqual({ code: 1, signal: null })
      expect(await conclave(['run', '--config', config, '--out', dir, '--force'])).toEqual({ code: 1, signal: null })
      expect(await records(dir)).toBeLessThan(30 * 13 + 1) // both refused while it ran
      expect(await first).toEqual({ code: 0, signal: null })
      expect((await finalReport(dir)).audit).toEqual({ ok: true, records: 30 * 13 + 1 })
      // Its lock is free again: the next run takes it.
      await (await lockRunDir(dir))()
    }, 300_000)

    // A kill (or a power cut) in the middle of a block's write leaves half a line: the tangle was
    // damaged for good, and the run could not be resumed.
    it('killed in the middle of writing a block, it drops the half-written line and resumes to the model of the run never stopped', async () => {
      const dir = join(root, 'torn')
      expect(await conclave(['run', '--config', config, '--out', dir], { dir, records: 12, delayMs: 0 })).toEqual({ code: null, signal: 'SIGKILL' })
      const file = join(dir, 'ledger', 'tangle.jsonl')
      const lines = (await readFile(file, 'utf8')).split('\n').slice(0, -1)
      const last = lines.pop() ?? ''
      await writeFile(file, [...lines, last.slice(0, last.length >> 1)].join('\n'))
      expect(await conclave(['run', '--resume', dir])).toEqual({ code: 0, signal: null })
      expect(await finalReport(dir)).toEqual(reference)
    })

    it('refuses a directory that holds no run, and flags that would change the run it continues, changing nothing', async () => {
      await expect(readRunConfig(await tempDir())).rejects.toMatchObject({ name: 'RunDirectoryError', code: 'ERR_RUN_DIRECTORY' })
      const whole = join(root, 'whole')
      const before = await readFile(join(whole, 'report.json'))
      expect(await conclave(['run', '--resume', whole, '--seed', '8'])).toEqual({ code: 1, signal: null })
      expect(await readFile(join(whole, 'report.json'))).toEqual(before)
    })
  }
})
