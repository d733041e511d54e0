import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { PHASES, PhaseTimer, preciseTimersOpen, type PhaseSeconds } from '../../src/federation/phases.ts'
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

  it('innermost names the span opened last that is still open, whichever closes first', async () => {
    const timer = new PhaseTimer()
    expect(timer.innermost).toBeUndefined()
    let releaseFirst = (): void => {}
    let releaseSecond = (): void => {}
    const first = timer.time('fetchVerify', () => new Promise<void>(resolve => { releaseFirst = resolve }))
    expect(timer.innermost).toBe('fetchVerify')
    const second = timer.time('merge', () => new Promise<void>(resolve => { releaseSecond = resolve }))
    expect(timer.innermost).toBe('merge')
    releaseFirst()
    await first
    expect(timer.innermost).toBe('merge')
    releaseSecond()
    await second
    expect(timer.innermost).toBeUndefined()
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

describe('phase attribution when participants share a thread', () => {
  /** A member trains (its span opened first) and, after another opened an anchor span that only waits, computes for 80 ms. */
  async function overlap (timer: PhaseTimer): Promise<{ busy: number, taken: PhaseSeconds, wall: number }> {
    let busy = 0
    const wall = await timed(async () => {
      const training = timer.time('train', async () => {
        await sleep(5)
        const start = performance.now()
        while (performance.now() - start < 80) { /* training's own arithmetic */ }
        busy = (performance.now() - start) / 1000
      })
      const anchoring = timer.time('anchor', async () => { await sleep(100) })
      await Promise.all([training, anchoring])
    })
    return { busy, taken: timer.take(), wall }
  }

  it('innermost: one member\'s training, resumed while another\'s anchor span is open, is charged to the anchor', async () => {
    const { busy, taken, wall } = await overlap(new PhaseTimer())
    expect(taken.anchor).toBeGreaterThanOrEqual(busy)
    expect(taken.train).toBeLessThan(busy)
    expect(total(taken)).toBeLessThanOrEqual(wall)
  })

  it('precise: each span is charged the time its own code runs, and the anchor only the waiting nobody ran through', async () => {
    const timer = new PhaseTimer('precise')
    const { busy, taken, wall } = await overlap(timer)
    timer.close()
    expect(taken.train).toBeGreaterThanOrEqual(busy)
    // the anchor waited 100 ms, 80 of them while training ran
    expect(taken.anchor).toBeLessThan(busy)
    expect(total(taken)).toBeLessThanOrEqual(wall)
  })

  it('precise: a phase inside another still gets its own time, and code outside every span is nobody\'s', async () => {
    const timer = new PhaseTimer('precise')
    let outside = 0
    const wall = await timed(async () => {
      await timer.time('vote', () => timer.time('anchor', async () => {
        await sleep(5)
        const start = performance.now()
        while (performance.now() - start < 20) { /* signing, mining */ }
      }))
      const start = performance.now()
      while (performance.now() - start < 20) { /* an agent's graph, timed by nobody */ }
      outside = (performance.now() - start) / 1000
    })
    const taken = timer.take()
    timer.close()
    expect(taken.anchor).toBeGreaterThanOrEqual(0.02)
    expect(taken.vote).toBeLessThan(taken.anchor)
    expect(total(taken)).toBeLessThanOrEqual(wall - outside)
  })
})

describe('precise timers are released', () => {
  it('a closed timer is charged nothing more, and once none is left the process keeps no hook', async () => {
    const first = new PhaseTimer('precise')
    const second = new PhaseTimer('precise')
    await first.time('anchor', async () => { await sleep(5) })
    await second.time('vote', async () => { await sleep(5) })
    expect(preciseTimersOpen()).toBe(2)
    first.close()
    expect(preciseTimersOpen()).toBe(1)
    first.take()
    // second's span waits; first, closed, is no longer charged for the waiting
    await second.time('anchor', async () => { await sleep(20) })
    expect(total(first.take())).toBe(0)
    expect(second.take().anchor).toBeGreaterThan(0.015)
    second.close()
    expect(preciseTimersOpen()).toBe(0)
    // a timer opened afterwards gets a hook again and is charged as before
    const third = new PhaseTimer('precise')
    await third.time('train', async () => {
      await sleep(1)
      const start = performance.now()
      while (performance.now() - start < 15) { /* its own arithmetic */ }
    })
    expect(third.take().train).toBeGreaterThanOrEqual(0.015)
    third.close()
    expect(preciseTimersOpen()).toBe(0)
  })

  it('a run with precise phase timing leaves no timer behind', async () => {
    await runFederation(smallConfig({ rounds: 1 }), { out: await tempDir(), force: true, phaseAttribution: 'precise' })
    expect(preciseTimersOpen()).toBe(0)
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
