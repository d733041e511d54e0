import { describe, expect, it } from 'vitest'
import { Simulation } from '../../src/federation/simulation.ts'
import { expectAuditClean, smallConfig, tempDir, votesIn } from './helpers.ts'

interface Entropy { before: number, after: number, reference?: number, round?: number[] }
interface Movement { after: number, reference?: number, round: number[] }

/**
 * Two rounds of four members under probation with `terms`, one training on half-random labels: the
 * charter's acceptance terms and the measurements every vote signed, once the audit has replayed each vote.
 */
async function signed (terms: Record<string, unknown>): Promise<{ chartered: unknown, votes: Array<{ entropy?: Entropy, movement?: Movement }> }> {
  const config = smallConfig({ agents: 4, rounds: 2, acceptance: 'probation', excludeRejected: true, strikes: 2, gainingVouchers: true, ...terms, attacks: [{ kind: 'label-noise', agent: 4 }] } as never)
  const sim = await Simulation.create(config, { dir: await tempDir() })
  try {
    await sim.charter()
    const chartered = sim.participants[0]?.state.charter?.record.acceptance
    await sim.round(1)
    await sim.round(2)
    const votes = (await votesIn(sim)).map(({ vote }) => vote.measurement as { entropy?: Entropy, movement?: Movement })
    await expectAuditClean(sim)
    return { chartered, votes }
  } finally {
    await sim.close()
  }
}

/** Entropies of a 23-class distribution lie between 0 and log 23. */
const expectEntropy = (value: number | undefined): void => {
  expect(value).toBeGreaterThanOrEqual(0)
  expect(value).toBeLessThanOrEqual(Math.log(23) + 1e-9)
}

describe('minSharpening: a newcomer must make a voter\'s model surer, as the voter\'s own update does', () => {
  it('is chartered, every vote on a newcomer signs the three entropies it was decided by, and the audit replays each vote', async () => {
    const { chartered, votes } = await signed({ minSharpening: 0.45 })
    const entropies = votes.map(v => v.entropy)
    expect(chartered).toMatchObject({ rule: 'probation', minSharpening: 0.45 })
    expect(entropies.length).toBeGreaterThan(0)
    for (const entropy of entropies) {
      expect(entropy).toBeDefined()
      for (const v of [entropy?.before, entropy?.after, entropy?.reference]) expectEntropy(v)
    }
  }, 240_000)

  it('under sharpeningYardstick round, every vote signs its entropy with each other update of the round, and the audit replays each vote', async () => {
    const { chartered, votes } = await signed({ badOnProbation: true, minSharpening: 0.6, sharpeningYardstick: 'round' })
    const entropies = votes.map(v => v.entropy)
    expect(chartered).toMatchObject({ rule: 'probation', minSharpening: 0.6, sharpeningYardstick: 'round' })
    expect(entropies.length).toBeGreaterThan(0)
    for (const entropy of entropies) {
      // Four proposals a round: the one judged and the voter's own aside, two others.
      expect(entropy?.round).toHaveLength(2)
      for (const v of entropy?.round ?? []) expectEntropy(v)
    }
  }, 240_000)
})

describe('minMovement: a newcomer must move a voter\'s predictions like the round\'s updates do', () => {
  it('is chartered, every vote on a newcomer signs how far it, the voter\'s own update and each other of the round move the voter\'s predictions, and the audit replays each vote', async () => {
    const { chartered, votes } = await signed({ badOnProbation: true, minMovement: 0.54 })
    expect(chartered).toMatchObject({ rule: 'probation', minMovement: 0.54 })
    expect(votes.length).toBeGreaterThan(0)
    for (const { movement } of votes) {
      expect(movement?.round).toHaveLength(2)
      for (const v of [movement?.after, movement?.reference, ...(movement?.round ?? [])]) {
        expect(v).toBeGreaterThan(0)
        expect(v).toBeLessThan(Math.log(23))
      }
    }
  }, 240_000)
})
