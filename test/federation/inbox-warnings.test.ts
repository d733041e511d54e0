import { afterEach, describe, expect, it } from 'vitest'
import { LedgerCorruptError } from '../../src/core/errors.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { peekRecord } from '../../src/identity/index.ts'
import { smallConfig, tempDir } from './helpers.ts'

/**
 * A record a member applied stands, even when what it does on it fails (its vote did not
 * reach the ledger): it is not reported as a rejected record, and the warning says what
 * failed. Before, the proposal was logged and counted as rejected by the member that had
 * applied it.
 */
describe('a member that applied a proposal and could not vote on it', () => {
  let sim: Simulation | undefined
  afterEach(async () => { await sim?.close(); sim = undefined })

  it('does not call the proposal rejected, and warns that it could not act on it', async () => {
    const warnings: string[] = []
    sim = await Simulation.create(smallConfig({ rounds: 1 }), { dir: await tempDir(), logger: { info () {}, warn (message) { warnings.push(message) } } })
    await sim.charter()
    const append = sim.ledger.append.bind(sim.ledger)
    let failed = 0
    sim.ledger.append = async (jwt, options) => {
      if (failed === 0 && peekRecord(jwt).record?.type === 'vote') {
        failed++
        throw new LedgerCorruptError('this copy of the ledger is damaged: it is not extended')
      }
      return append(jwt, options)
    }
    await sim.propose(1)
    await sim.settle()
    expect(failed).toBe(1)
    expect([...sim.rejections.values()].flat()).toEqual([])
    expect(warnings.filter(w => w.includes('rejected block'))).toEqual([])
    expect(warnings.filter(w => w.includes('could not act on it'))).toHaveLength(1)
    // Every member holds every proposal: the one whose vote failed applied it too.
    for (const p of sim.participants) expect(p.state.rounds.get(1)?.proposals).toHaveLength(3)
  })
})
