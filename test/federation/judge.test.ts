import { describe, expect, it } from 'vitest'
import type { Evaluation } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { smallConfig, tempDir } from './helpers.ts'

describe('how far a peer lets an update lower its judge', () => {
  it('a relative tolerance lets an update undo that share of what the federation taught the peer since the initial model', async () => {
    // tolerance 0, relative 1: an update passes when it leaves my score at least at the initial model's
    const config = smallConfig({ rounds: 2, tolerance: 0, relativeTolerance: 1 })
    const sim = await Simulation.create(config, { dir: await tempDir() })
    const seen = sim.participants.map(() => [] as Evaluation[])
    sim.participants.forEach((p, i) => p.on('conclave:evaluated', e => { seen[i]?.push(e) }))
    try {
      await sim.charter()
      await sim.round(1)
      await sim.round(2)
    } finally {
      await sim.close()
    }
    let learnt = 0
    for (const evaluations of seen) {
      const first = evaluations.filter(e => e.round === 1)
      const second = evaluations.filter(e => e.round === 2)
      expect(first.length).toBe(2)
      expect(second.length).toBe(2)
      // round 1 judges against the initial model itself: nothing taught yet, nothing may be undone
      const initial = first[0]?.before as number
      for (const e of first) {
        expect(e.before).toBe(initial)
        expect(e.summary).toMatch(/may fall 0\.0000\)/)
        expect(e.passes).toBe(e.score >= 0)
      }
      if (second.some(e => e.before > initial)) learnt++
      for (const e of second) {
        const allowed = Math.max(0, e.before - initial)
        expect(e.summary).toContain(`may fall ${allowed.toFixed(4)})`)
        expect(e.passes).toBe(e.score >= -allowed)
        if (Math.abs(e.after - initial) > 1e-9) expect(e.passes).toBe(e.after > initial)
      }
    }
    // the federation learnt in round 1, so in round 2 some peers had room to give
    expect(learnt).toBeGreaterThan(0)
  })
})
