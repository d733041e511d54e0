import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { PHASES, PhaseTimer, type PhaseSeconds } from '../../src/federation/phases.ts'
import { runFederation } from '../../src/federation/run.ts'
import { smallConfig, tempDir } from './helpers.ts'

const total = (phases: PhaseSeconds): number => PHASES.reduce((sum, p) => sum + phases[p], 0)

/** Runs `work` and returns the seconds it took by the same clock the timer reads. */
async function timed (work: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  await work()
  return (performance.now() - start) / 1000
}

describe('phase timer', () => {
  it('counts a phase inside another once: the inner one gets the time, and the sum never exceeds the time that passed', async () => {
    const timer = new PhaseTimer()
    const wall = await timed(() => timer.time('vote', () => timer.time('anchor', () => sleep(30))))
    const taken = timer.take()
    expect(total(taken)).toBeLessThanOrEqual(wall)
    // the vote waited on its anchoring and did nothing else
    expect(taken.anchor).toBeGreaterThan(taken.vote)
  })

  it('counts overlapping phases that do not nest once, too', async () => {
    const timer = new PhaseTimer()
    const wall = await timed(async () => {
      let release = (): void => {}
      const first = timer.time('fetchVerify', () => new Promise<void>(resolve => { release = resolve }))
      await timer.time('merge', async () => {
        await sleep(20)
        release()
        await first
        await sleep(20)
      })
    })
    expect(total(timer.take())).toBeLessThanOrEqual(wall)
  })

  it('take() returns what was counted since the last take, including a phase still running', async () => {
    const timer = new PhaseTimer()
    let middle: PhaseSeconds | undefined
    const wall = await timed(() => timer.time('train', async () => {
      await sleep(10)
      middle = timer.take()
      await sleep(10)
    }))
    const rest = timer.take()
    expect(middle?.train).toBeGreaterThan(0)
    expect(rest.train).toBeGreaterThan(0)
    expect((middle?.train ?? 0) + rest.train).toBeLessThanOrEqual(wall)
  })
})

describe('phases in a run', () => {
  it('add up to no more than each round\'s wall time, with every phase of the protocol measured', async () => {
    // votes anchor and announce inside their own phase; peers merge while they verify the checkpoint
    const report = await runFederation(smallConfig({ rounds: 2, agent: { driver: 'autopilot' } }), { out: await tempDir() })
    for (const round of report.rounds) expect(total(round.phases)).toBeLessThanOrEqual(round.wallSeconds)
    for (const round of report.rounds.slice(1)) {
      for (const phase of ['train', 'publish', 'anchor', 'announce', 'fetchVerify', 'evaluate', 'vote', 'merge'] as const) expect(round.phases[phase]).toBeGreaterThan(0)
    }
  })
})
