import { describe, expect, it } from 'vitest'
import { wallClock } from '../../src/federation/round-loop.ts'

describe('a member process\'s clock', () => {
  const participant = { idle: async () => {} }

  it('waits until done, or until the time is up', async () => {
    let polls = 0
    expect(await wallClock(participant, { pollMs: 5 }).until(() => ++polls === 3, 60)).toBe(true)
    expect(await wallClock(participant, { pollMs: 5 }).until(() => false, 0.05)).toBe(false)
  })

  // An agent whose turn hit a bug: the round would otherwise wait out its window (half an hour) before the member ends.
  it('rethrows its driver\'s failure at the next poll, not once the window has passed', async () => {
    const bug = new TypeError('a plugin bug')
    const driver: { failure?: unknown } = {}
    setTimeout(() => { driver.failure = bug }, 20)
    // (A window of 1800 s: it rejects within the test's few seconds, or the test times out.)
    await expect(wallClock(participant, { pollMs: 5, driver }).until(() => false, 1800)).rejects.toBe(bug)
  })
})
