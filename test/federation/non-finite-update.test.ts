import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Simulation } from '../../src/federation/simulation.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { chartered } from './helpers.ts'

/** How the second member built trains, as NaN in its features or a diverging learning rate leave it. */
const diverging = vi.hoisted(() => ({ built: 0, weights: false, loss: NaN }))

vi.mock('../../src/federation/attacks.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/federation/attacks.ts')>()
  const { mapValues } = await import('../../src/ml/weights.ts')
  class Conduct extends real.Conduct {
    readonly diverges = ++diverging.built === 2
    override async update (...args: Parameters<InstanceType<typeof real.Conduct>['update']>): ReturnType<InstanceType<typeof real.Conduct>['update']> {
      const update = await super.update(...args)
      if (!this.diverges) return update
      return { ...update, delta: diverging.weights ? mapValues(update.delta, () => NaN) : update.delta, loss: diverging.loss }
    }
  }
  return { ...real, Conduct }
})

async function blockCount (sim: Simulation): Promise<number> {
  let n = 0
  for await (const _ of sim.ledger.blocks()) n++
  return n
}

// Found red-teaming: a member whose training ended in a NaN loss published its update to the store,
// then failed signing its proposal with a raw ZodError (no record holds a NaN).
describe.each([
  { trained: 'a NaN loss', weights: false, loss: NaN },
  { trained: 'an infinite loss', weights: false, loss: Infinity },
  { trained: 'NaN weights and loss', weights: true, loss: NaN }
])('a member whose local training ends in $trained', ({ weights, loss }) => {
  let sim: Simulation | undefined
  beforeEach(() => { Object.assign(diverging, { built: 0, weights, loss }) })
  afterEach(async () => { await sim?.close(); sim = undefined })

  it('refuses to propose with a NonFiniteUpdateError, storing and anchoring nothing; its peers propose as before', async () => {
    sim = await chartered({ agents: 3, rounds: 1 })
    const [first, member] = sim.participants as [Participant, Participant]
    const blocks = await blockCount(sim)
    const put = vi.spyOn(sim.store, 'put')
    await expect(member.propose(1)).rejects.toMatchObject({ name: 'NonFiniteUpdateError', code: 'ERR_NON_FINITE_UPDATE' })
    expect(put).not.toHaveBeenCalled()
    expect(member.draft).toBeUndefined()
    expect(await blockCount(sim)).toBe(blocks)
    await first.propose(1)
    await sim.settle()
    expect(await blockCount(sim)).toBe(blocks + 1)
  }, 120_000)
})
