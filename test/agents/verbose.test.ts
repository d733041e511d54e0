import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { PHASES } from '../../src/federation/phases.ts'
import type { RunReport } from '../../src/federation/report.ts'
import { capture } from '../federation/capture.ts'
import { tempDir, tinyDataset } from '../federation/helpers.ts'

describe('conclave run --verbose', () => {
  it('prints one line per agent step (tool, clipped arguments, model time), and the round table has a model column', async () => {
    const out = join(await tempDir(), 'run')
    const run = await capture(['run', '--agents', '3', '--rounds', '1', '--quorum', 'majority', '--data', await tinyDataset(), '--out', out, '--verbose'])
    expect(run.code).toBe(0)
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as RunReport
    const steps = run.err.split('\n').filter(l => / step \d+ /.test(l))
    for (const agent of report.agents) {
      const mine = steps.filter(l => l.startsWith(`[info] ${agent.name} step `))
      // every model call is a step, and every step is printed
      expect(mine).toHaveLength(agent.llm?.calls ?? -1)
      expect(mine.filter(l => / \(round-open\): train \{.*\} · model \d+\.\d{3} s$/.test(l))).toHaveLength(1)
      const votes = mine.flatMap(l => / \(proposal\): vote (\{"proposal":"[0-9a-f]{64}","accept":.*) · model \d+\.\d{3} s$/.exec(l)?.[1] ?? [])
      expect(votes).toHaveLength(2)
      // a vote's rationale is long: its arguments are clipped
      for (const args of votes) expect([args.length, args.at(-1)]).toEqual([120, '…'])
      expect(mine.filter(l => / reply ".*" · model /.test(l))).toHaveLength(3)
    }
    expect(run.out).toMatch(/\| round \| proposals \| accepts \| rejects \| model votes \| accuracy \| model s \| train s \| protocol s \| wall s \| peak MiB \|\n(\|---:){11}\|\n/)
    const round = report.rounds.at(-1)
    expect(round?.phases.model).toBeGreaterThan(0)
    // the agents' thinking is counted once, beside the protocol's work
    expect(PHASES.reduce((sum, p) => sum + (round?.phases[p] ?? 0), 0)).toBeLessThanOrEqual(round?.wallSeconds ?? 0)
  })
})
