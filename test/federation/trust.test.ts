import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { Record as ConclaveRecord } from '../../src/core/records.ts'
import { littleIsEnough } from '../../src/federation/attacks.ts'
import { robustVerdict } from '../../src/federation/robust-acceptance.ts'
import { FederationState } from '../../src/federation/state.ts'
import { createIdentity, type Identity } from '../../src/identity/index.ts'
import { randomSecretKey } from '../../src/identity/did-key.ts'
import type { Block } from '../../src/ledger/index.ts'
import { Rng } from '../../src/data/rng.ts'
import { cosine, knownSketchCosine, l2Norm, meanSketch, sketch, SKETCH_SIZE, sketchCosine, sketchSquares, supportCosine } from '../../src/ml/similarity.ts'
import type { Weights } from '../../src/ml/weights.ts'
import { Robustness } from '../../src/core/terms.ts'

const bounds = Robustness.parse({})
/** Hand-made blocks carry no votes, so no ancestry is ever asked. */
const ledger = { descends: async () => true }

describe('the geometry bounds on an update', () => {
  it('accepts an honest-looking update: its size near mine, along mine', () => {
    expect(robustVerdict({ normRatio: 1.4, cosine: 0.07, earlierCosine: -1, historyCosine: -1 }, bounds).passes).toBe(true)
  })
  it('accepts an update across mine that follows an earlier one (a later round\'s honest update)', () => {
    expect(robustVerdict({ normRatio: 2.4, cosine: 0.008, earlierCosine: 0.73, historyCosine: 0.73 }, bounds).passes).toBe(true)
  })
  it('rejects an update many times my own (scaling)', () => {
    expect(robustVerdict({ normRatio: 10, cosine: 0.1, earlierCosine: 0.8, historyCosine: 0.8 }, bounds).passes).toBe(false)
  })
  it('rejects an update along nothing it could have learnt from (noise)', () => {
    expect(robustVerdict({ normRatio: 2.2, cosine: 0.001, earlierCosine: 0.015, historyCosine: 0.015 }, bounds).passes).toBe(false)
  })
  it('rejects a re-sent update, however small its disguise', () => {
    expect(robustVerdict({ normRatio: 1, cosine: 0.1, earlierCosine: 0.995, historyCosine: 0.5 }, bounds).passes).toBe(false)
  })
  it('is at the bounds inclusive: exactly maxNormRatio and minCosine pass', () => {
    expect(robustVerdict({ normRatio: 3, cosine: 0.03, earlierCosine: -1, historyCosine: -1 }, bounds).passes).toBe(true)
  })
  it('rejects, under maxRoundCosine, an update lying closer to the mean of the round\'s earlier updates than the bound (a cover), inclusive; absent bound or no earlier update: not asked', () => {
    const honest = { normRatio: 1.1, cosine: 0.1, earlierCosine: 0.15, historyCosine: -1, roundCosine: 0.22 }
    const cover = { ...honest, roundCosine: 0.45 }
    const withBound = { ...bounds, maxRoundCosine: 0.3 }
    expect(robustVerdict(honest, withBound).passes).toBe(true)
    expect(robustVerdict({ ...honest, roundCosine: 0.3 }, withBound).passes).toBe(true)
    expect(robustVerdict(cover, withBound)).toMatchObject({ passes: false, summary: expect.stringContaining('a cover: cosine 0.450 with the mean of the round\'s earlier updates (at most 0.3)') })
    expect(robustVerdict(cover, bounds).passes).toBe(true)
    const { roundCosine: _, ...first } = cover
    expect(robustVerdict(first, withBound).passes).toBe(true)
  })
  it('fails closed: a measurement that is not a number fails the bound it is held to, though every comparison with NaN is false', () => {
    const withBound = { ...bounds, maxRoundCosine: 0.3 }
    const honest = { normRatio: 1.4, cosine: 0.07, earlierCosine: 0.2, historyCosine: 0.1, roundCosine: 0.2 }
    expect(robustVerdict(honest, withBound).passes).toBe(true)
    const failing = (['earlierCosine', 'roundCosine', 'normRatio', 'cosine'] as const).filter(key => !robustVerdict({ ...honest, [key]: Number.NaN }, withBound).passes)
    expect(failing).toEqual(['earlierCosine', 'roundCosine', 'normRatio', 'cosine'])
  })
  it('passes everything when no bounds are set', () => {
    expect(robustVerdict({ normRatio: 100, cosine: -1, earlierCosine: 1, historyCosine: 1 }, undefined).passes).toBe(true)
  })
})

function randomWeights (rng: Rng, sizes: number[]): Weights {
  return new Map(sizes.map((n, i) => [`t${i}`, { shape: [n], data: Float32Array.from({ length: n }, () => rng.normal()) }]))
}

describe('update similarity', () => {
  const rng = new Rng(5)
  const a = randomWeights(rng, [3000, 5000])
  const b = randomWeights(rng, [3000, 5000])
  it('measures norm and cosine exactly', () => {
    const two: Weights = new Map([['x', { shape: [2], data: Float32Array.from([3, 4]) }]])
    const other: Weights = new Map([['x', { shape: [2], data: Float32Array.from([4, 3]) }]])
    expect(l2Norm(two)).toBe(5)
    expect(cosine(two, other)).toBeCloseTo(24 / 25, 6)
  })
  it('sketches the mean of updates as the mean of their sketches: a copy of the mean lies at cosine ≈ 1 with it, each update far below', () => {
    const mean: Weights = new Map([...a].map(([name, t]) => [name, { shape: t.shape, data: t.data.map((v, i) => (v + (b.get(name)?.data[i] as number)) / 2) }]))
    const sketched = meanSketch([sketch(a), sketch(b)])
    expect(sketchCosine(sketch(mean), sketched)).toBeGreaterThan(0.9999)
    expect(sketchCosine(sketch(a), sketched)).toBeCloseTo(cosine(a, mean), 1)
    expect(() => meanSketch([])).toThrow(RangeError)
  })
  it('measures a sparse update\'s direction where it sends: the other vector\'s coordinates where it is zero do not count', () => {
    const sparse: Weights = new Map([['x', { shape: [4], data: Float32Array.from([3, 0, 4, 0]) }]])
    const dense: Weights = new Map([['x', { shape: [4], data: Float32Array.from([4, 100, 3, -100]) }]])
    expect(supportCosine(sparse, dense)).toBeCloseTo(24 / 25, 6)
    expect(cosine(sparse, dense)).toBeLessThan(0.2)
    expect(supportCosine(dense, dense)).toBeCloseTo(1, 6)
    expect(supportCosine(new Map([['x', { shape: [4], data: new Float32Array(4) }]]), dense)).toBe(0)
  })
  it('sketches keep cosines: unrelated updates near 0, a re-sent one with 0.1% noise above 0.99', () => {
    const resent: Weights = new Map([...a].map(([k, t]) => [k, { shape: t.shape, data: t.data.map(v => v * (1 + 1e-3 * rng.normal())) }]))
    expect(Math.abs(sketchCosine(sketch(a), sketch(b)))).toBeLessThan(0.1)
    expect(sketchCosine(sketch(a), sketch(resent))).toBeGreaterThan(0.99)
    expect(Math.abs(sketchCosine(sketch(a), sketch(b)) - cosine(a, b))).toBeLessThan(0.1)
  })
  it('takes a sketch\'s cosine from its kept sum of squares bit for bit as from the sketches alone, zeros included', () => {
    const sketches = [sketch(a), sketch(b), sketch(randomWeights(rng, [100])), new Float32Array(SKETCH_SIZE)]
    const pairs = sketches.flatMap(u => sketches.map(v => [u, v] as const))
    expect(pairs.map(([u, v]) => knownSketchCosine(u, sketchSquares(u), v, sketchSquares(v)))).toEqual(pairs.map(([u, v]) => sketchCosine(u, v)))
  })
})

describe('A Little Is Enough', () => {
  it('sends μ − z·σ per coordinate', () => {
    const u = (xs: number[]): Weights => new Map([['w', { shape: [xs.length], data: Float32Array.from(xs) }]])
    const out = littleIsEnough([u([1, 0]), u([3, 0])], 1)
    expect([...(out.get('w')?.data ?? [])]).toEqual([1, 0])
  })
})

const CID_A = 'bafkreigyghlpe6l7tbxlkrj6upeg4g3ky7vmss5dl3oro4ylsoktmbm27i'
const CID_B = 'bafkreiaxnnnb7qz2focittuqq3ya25q7rcv3bqynnczfzako47346wosmu'
const CID_C = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
const sha = (s: string): string => createHash('sha256').update(s).digest('hex')
const T0 = 1_800_000_000
let seq = 0
async function block (who: Identity, record: ConclaveRecord): Promise<Block> {
  const jwt = await who.sign(record, { now: T0 })
  const n = seq++
  return { id: sha(`${n}:${jwt}`), seq: n, parents: [], record: jwt, time: T0, pow: 0 }
}

describe('proposals the protocol refuses before any vote', () => {
  const setup = async (): Promise<{ state: FederationState, members: Identity[] }> => {
    const members = [0, 1, 2].map(() => createIdentity(randomSecretKey()))
    const state = new FederationState()
    await state.apply(await block(members[0] as Identity, {
      type: 'charter', federation: 'fed', round: 0, members: members.map(m => m.did), quorum: { kind: 'count', count: 1 },
      windowSeconds: 600, aggregation: 'fedavg', momentum: 0, task: 'classify', initial: { cid: CID_A, sha256: sha('initial') }, samples: [100, 200, 300]
    }), { ledger })
    return { state, members }
  }
  const proposal = (cid: string, digest: string, numSamples: number): ConclaveRecord =>
    ({ type: 'proposal', federation: 'fed', round: 1, base: CID_A, delta: { cid, sha256: sha(digest) }, numSamples })

  it('refuses a proposal claiming more samples than its proposer declared (InflatedSamplesError)', async () => {
    const { state, members } = await setup()
    await expect(state.apply(await block(members[1] as Identity, proposal(CID_B, 'b', 201)), { ledger })).rejects.toMatchObject({ name: 'InflatedSamplesError', code: 'ERR_INFLATED_SAMPLES' })
    await expect(state.apply(await block(members[1] as Identity, proposal(CID_B, 'b', 200)), { ledger })).resolves.toMatchObject({ issuer: members[1]?.did })
  })

  it('refuses a proposal that re-sends an update already proposed, by anyone (ReplayedUpdateError)', async () => {
    const { state, members } = await setup()
    await state.apply(await block(members[1] as Identity, proposal(CID_B, 'b', 10)), { ledger })
    await expect(state.apply(await block(members[2] as Identity, proposal(CID_B, 'b', 10)), { ledger })).rejects.toMatchObject({ name: 'ReplayedUpdateError', code: 'ERR_REPLAYED_UPDATE' })
    await expect(state.apply(await block(members[2] as Identity, proposal(CID_C, 'b', 10)), { ledger })).rejects.toMatchObject({ name: 'ReplayedUpdateError' })
    await expect(state.apply(await block(members[2] as Identity, proposal(CID_B, 'c', 10)), { ledger })).rejects.toMatchObject({ name: 'ReplayedUpdateError' })
    await expect(state.apply(await block(members[2] as Identity, proposal(CID_C, 'c', 10)), { ledger })).resolves.toMatchObject({ issuer: members[2]?.did })
  })
})
