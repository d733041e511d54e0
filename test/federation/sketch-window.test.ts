import { describe, expect, it } from 'vitest'
import { Robustness } from '../../src/core/terms.ts'
import { Rng } from '../../src/data/rng.ts'
import { freshHoldings, type Holdings } from '../../src/federation/context.ts'
import { robustVerdict } from '../../src/federation/robust-acceptance.ts'
import type { ProposalEntry } from '../../src/federation/state.ts'
import { keepSketch, measureGeometry, settleSketches, SKETCH_ROUNDS, type GeometryContext } from '../../src/federation/steps/geometry.ts'
import type { Weights } from '../../src/ml/weights.ts'

const bounds = Robustness.parse({})
const rng = new Rng(3)
const update = (): Weights => new Map([['w', { shape: [4000], data: Float32Array.from({ length: 4000 }, () => rng.normal()) }]])
/** `of` re-sent with 0.1% noise, as the stale attack does. */
const resent = (of: Weights): Weights => new Map([...of].map(([name, t]) => [name, { shape: t.shape, data: t.data.map(v => v * (1 + 1e-3 * rng.normal())) }]))
const rounds = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** A member judging, in `round`, the proposal `new` with its own update `own` of the round, having kept `held`'s sketches. */
function judging (held: Holdings, round: number, own: Weights): { ctx: GeometryContext, entry: ProposalEntry } {
  held.own.set(round, own)
  const state = { rounds: new Map([[round, { proposals: ['new'] }]]), charter: undefined, currentRound: () => round }
  return { ctx: { held, state } as unknown as GeometryContext, entry: { block: 'new', signed: { record: { round } } } as unknown as ProposalEntry }
}

describe('the window of rounds a member measures updates against', () => {
  it('lets go, at a round\'s checkpoint, of the sketches of rounds no later vote measures against, and marks what it merged', () => {
    const held = freshHoldings({} as Holdings['shard'])
    const last = SKETCH_ROUNDS + 3
    for (const round of rounds(1, last)) keepSketch(held, { round, block: `b${round}`, delta: update() })
    settleSketches(held, { round: last, merged: [`b${last}`, 'b1'] })
    // The next vote is of round last + 1 at the earliest: it measures against rounds last + 1 − SKETCH_ROUNDS to last.
    expect(held.sketches.map(({ round, block, merged }) => ({ round, block, merged }))).toEqual(rounds(4, last).map(round => ({ round, block: `b${round}`, merged: round === last ? true : undefined })))
  })

  it('refuses a copy of an update of its window as re-sent; a copy of an older one is not caught, and no longer explained by it', async () => {
    for (const age of [SKETCH_ROUNDS, SKETCH_ROUNDS + 1]) {
      const held = freshHoldings({} as Holdings['shard'])
      const original = update()
      keepSketch(held, { round: 1, block: 'original', delta: original })
      settleSketches(held, { round: 1, merged: ['original'] })
      // My own update lies across it: only the original could explain the copy's direction.
      const { ctx, entry } = judging(held, 1 + age, update())
      const g = await measureGeometry(ctx, { entry, delta: resent(original) })
      expect(g.cosine).toBeLessThan(bounds.minCosine)
      expect(robustVerdict(g, bounds).passes).toBe(false)
      if (age === SKETCH_ROUNDS) {
        expect(g.earlierCosine).toBeGreaterThan(bounds.maxEarlierCosine)
        expect(g.historyCosine).toBeGreaterThan(bounds.maxEarlierCosine)
      } else {
        // Older than the window: measured against nothing, and refused only as unexplained.
        expect({ earlierCosine: g.earlierCosine, historyCosine: g.historyCosine }).toEqual({ earlierCosine: -1, historyCosine: -1 })
        expect(robustVerdict({ ...g, cosine: bounds.minCosine }, bounds).passes).toBe(true)
      }
    }
  })
})
