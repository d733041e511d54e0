import { describe, expect, it } from 'vitest'
import { peekRecord } from '../../src/identity/index.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { expectAuditClean, smallConfig, tempDir } from './helpers.ts'

describe('minSharpening: a newcomer must make a voter\'s model surer, as the voter\'s own update does', () => {
  it('is chartered, every vote on a newcomer signs the three entropies it was decided by, and the audit replays each vote', async () => {
    const config = smallConfig({ agents: 4, rounds: 2, acceptance: 'probation', excludeRejected: true, strikes: 2, gainingVouchers: true, minSharpening: 0.45, attacks: [{ kind: 'label-noise', agent: 4 }] } as never)
    const sim = await Simulation.create(config, { dir: await tempDir() })
    try {
      await sim.charter()
      expect(sim.participants[0]?.state.charter?.record.acceptance).toMatchObject({ rule: 'probation', minSharpening: 0.45 })
      await sim.round(1)
      await sim.round(2)
      const votes = []
      for await (const block of sim.ledger.blocks()) {
        const { record } = peekRecord(block.record)
        if (record?.type === 'vote') votes.push(record)
      }
      expect(votes.length).toBeGreaterThan(0)
      for (const vote of votes) {
        const entropy = (vote.measurement as { entropy?: { before: number, after: number, reference?: number } }).entropy
        expect(entropy).toBeDefined()
        // Entropies of a 23-class distribution: between 0 and log 23.
        for (const v of [entropy?.before, entropy?.after, entropy?.reference]) expect(v).toBeGreaterThanOrEqual(0)
        expect(entropy?.before).toBeLessThanOrEqual(Math.log(23) + 1e-9)
      }
      await expectAuditClean(sim)
    } finally {
      await sim.close()
    }
  }, 240_000)

  it('under sharpeningYardstick round, every vote signs its entropy with each other update of the round, and the audit replays each vote', async () => {
    const config = smallConfig({ agents: 4, rounds: 2, acceptance: 'probation', excludeRejected: true, strikes: 2, gainingVouchers: true, badOnProbation: true, minSharpening: 0.6, sharpeningYardstick: 'round', attacks: [{ kind: 'label-noise', agent: 4 }] } as never)
    const sim = await Simulation.create(config, { dir: await tempDir() })
    try {
      await sim.charter()
      expect(sim.participants[0]?.state.charter?.record.acceptance).toMatchObject({ rule: 'probation', minSharpening: 0.6, sharpeningYardstick: 'round' })
      await sim.round(1)
      await sim.round(2)
      const votes = []
      for await (const block of sim.ledger.blocks()) {
        const { record } = peekRecord(block.record)
        if (record?.type === 'vote') votes.push(record)
      }
      expect(votes.length).toBeGreaterThan(0)
      for (const vote of votes) {
        const entropy = (vote.measurement as { entropy?: { before: number, after: number, reference?: number, round?: number[] } }).entropy
        // Four proposals a round: the one judged and the voter's own aside, two others.
        expect(entropy?.round).toHaveLength(2)
        for (const v of entropy?.round ?? []) {
          expect(v).toBeGreaterThanOrEqual(0)
          expect(v).toBeLessThanOrEqual(Math.log(23) + 1e-9)
        }
      }
      await expectAuditClean(sim)
    } finally {
      await sim.close()
    }
  }, 240_000)
})
