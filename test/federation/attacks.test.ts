import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { audit } from '../../src/federation/audit.ts'
import { Attack, corruptDelta, minMax, mostFlippedPassing, readsRound } from '../../src/federation/attacks.ts'
import { runBaseline } from '../../src/federation/baselines.ts'
import { parseRunConfig } from '../../src/federation/config.ts'
import { mergeRound } from '../../src/federation/merge.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { FederationState } from '../../src/federation/state.ts'
import { loadTask, TaskConfig } from '../../src/ml/task.ts'
import { applyDelta, delta, weightsSha256, type Weights } from '../../src/ml/weights.ts'
import { smallConfig, tempDir } from './helpers.ts'

const d: Weights = new Map([['w', { shape: [3], data: Float32Array.from([1, -2, 0.5]) }]])
const values = (w: Weights): number[] => [...(w.get('w')?.data ?? [])]

describe('attack modes', () => {
  it('corrupt updates as configured, deterministically', () => {
    expect(values(corruptDelta(d, { kind: 'sign-flip', agent: 1, fromRound: 1, scale: 2 }, 1))).toEqual([-2, 4, -1])
    expect(values(corruptDelta(d, { kind: 'scale', agent: 1, fromRound: 1, factor: 10 }, 1))).toEqual([10, -20, 5])
    // Colluders sign-flip ×scale, or propose their honest update (`update: honest`) and only vote as colluders.
    expect(values(corruptDelta(d, Attack.parse({ kind: 'collude', agent: 1 }), 1))).toEqual([-5, 10, -2.5])
    expect(values(corruptDelta(d, Attack.parse({ kind: 'collude', agent: 1, update: 'honest' }), 1))).toEqual([1, -2, 0.5])
    const noise = values(corruptDelta(d, { kind: 'random-noise', agent: 1, fromRound: 1, std: 1 }, 7))
    expect(noise).toEqual(values(corruptDelta(d, { kind: 'random-noise', agent: 1, fromRound: 1, std: 1 }, 7)))
    expect(noise).not.toEqual(values(d))
    expect(corruptDelta(d, undefined, 1)).toBe(d)
  })

  it('poison labels: flip maps every label to another, noise changes about `rate` of them', async () => {
    const task = await loadTask(TaskConfig.parse({ kind: 'classify', trainLimit: 400, testLimit: 50, features: 256 }))
    const [shard] = task.shards(1, { seed: 1, partition: 'iid' })
    const train = shard?.train ?? []
    const flipped = task.poison(train, { kind: 'flip', rate: 1, seed: 1 }) as Array<{ label: number }>
    expect(flipped.every((e, i) => e.label !== (train[i] as { label: number }).label)).toBe(true)
    const noisy = task.poison(train, { kind: 'noise', rate: 0.5, seed: 1 }) as Array<{ label: number }>
    const changed = noisy.filter((e, i) => e.label !== (train[i] as { label: number }).label).length / train.length
    expect(changed).toBeGreaterThan(0.3)
    expect(changed).toBeLessThan(0.6)
  })

  it('min-max: the mean pushed against the perturbation until it is as far from one update as the farthest pair', () => {
    const u = (...v: number[]): Weights => new Map([['w', { shape: [v.length], data: Float32Array.from(v) }]])
    // (2, 0) and (0, 2) lie √8 apart; their mean (1, 1) pushed by γ against its unit direction is √(2 + γ²)
    // from either, so γ = √6 and the update is (1 − √3, 1 − √3).
    const out = values(minMax([u(2, 0), u(0, 2)], 'unit'))
    for (const v of out) expect(v).toBeCloseTo(1 - Math.sqrt(3), 5)
    // One update alone: no spread, so no room to push it.
    expect(values(minMax([u(1, -2, 0.5)], 'std'))).toEqual([1, -2, 0.5])
    expect(values(corruptDelta(u(2, 0), { kind: 'min-max', agent: 1, fromRound: 1, perturbation: 'sign' }, 1, [u(0, 2)]))).toEqual(values(minMax([u(2, 0), u(0, 2)], 'sign')))
  })

  it('fuzz: min-max is the mean minus γ times its perturbation, within the farthest pair\'s distance of every update, and γ is the largest that is', () => {
    const distance = (a: number[], b: number[]): number => Math.hypot(...a.map((v, i) => v - (b[i] as number)))
    const dotOf = (a: number[], b: number[]): number => a.reduce((s, v, i) => s + v * (b[i] as number), 0)
    const vector = (n: number): fc.Arbitrary<number[]> => fc.array(fc.float({ min: -10, max: 10, noNaN: true, noDefaultInfinity: true }), { minLength: n, maxLength: n })
    const perturbations = fc.constantFrom('unit', 'sign', 'std') as fc.Arbitrary<'unit' | 'sign' | 'std'>
    fc.assert(fc.property(fc.integer({ min: 1, max: 6 }).chain(dim => fc.tuple(fc.array(vector(dim), { minLength: 1, maxLength: 6 }), perturbations)), ([rows, perturbation]) => {
      const flat = rows.map(r => [...Float32Array.from(r)])
      const n = flat.length
      const mean = (flat[0] as number[]).map((_, i) => flat.reduce((s, f) => s + (f[i] as number), 0) / n)
      const p = perturbation === 'unit'
        ? mean.map(v => v / (Math.hypot(...mean) || 1))
        : perturbation === 'sign' ? mean.map(Math.sign) : mean.map((m, i) => n < 2 ? 0 : Math.sqrt(flat.reduce((s, f) => s + ((f[i] as number) - m) ** 2, 0) / (n - 1)))
      const spread = Math.max(...flat.flatMap(a => flat.map(b => distance(a, b))))
      const out = values(minMax(flat.map(f => new Map([['w', { shape: [f.length], data: Float32Array.from(f) }]])), perturbation))
      const tolerance = 1e-3 * (1 + spread)
      for (const f of flat) expect(distance(out, f)).toBeLessThanOrEqual(spread + tolerance)
      const e = dotOf(p, p)
      if (e === 0) {
        expect(distance(out, mean)).toBeLessThanOrEqual(tolerance)
        return
      }
      const gamma = dotOf(mean.map((m, i) => m - (out[i] as number)), p) / e
      expect(gamma).toBeGreaterThanOrEqual(-tolerance)
      expect(distance(out, mean.map((m, i) => m - gamma * (p[i] as number)))).toBeLessThanOrEqual(tolerance)
      // A hundredth of the spread further along the perturbation, one update would lie beyond the farthest pair.
      const further = mean.map((m, i) => m - (gamma + (spread / 100 + 2 * tolerance) / Math.sqrt(e)) * (p[i] as number))
      expect(Math.max(...flat.map(f => distance(further, f)))).toBeGreaterThan(spread)
    }), { numRuns: 1000, seed: 41 })
  })

  it('adaptive-flip: the most flipped blend whose gain on its own validation examples keeps `keep` of the honest one\'s', async () => {
    const u = (v: number): Weights => new Map([['w', { shape: [1], data: Float32Array.from([v]) }]])
    const w = (x: Weights): number => values(x)[0] as number
    // A judge whose score is the weight itself: honest +1 gains 1, the flipped −1 loses 1, the blend β gains 1 − 2β.
    const judge = { name: 'w', tolerance: 0, score: async (x: Weights) => w(x) }
    const blend = w(await mostFlippedPassing(judge, u(0), u(1), u(-1), [], { keep: 0.25, share: 1 }))
    expect(blend).toBeGreaterThanOrEqual(0.25)
    expect(blend).toBeLessThan(0.25 + 2 ** -8)
    // At a share the gains scale alike, so the blend is the same.
    expect(w(await mostFlippedPassing(judge, u(0), u(1), u(-1), [], { keep: 0.25, share: 0.2 }))).toBeCloseTo(blend, 6)
    // An honest update that gains nothing leaves nothing to hide behind: it is sent as it is; a flipped one that passes is sent whole.
    expect(w(await mostFlippedPassing(judge, u(0), u(-0.5), u(-1), [], { keep: 0.25, share: 1 }))).toBe(-0.5)
    expect(w(await mostFlippedPassing(judge, u(0), u(1), u(0.5), [], { keep: 0.25, share: 1 }))).toBe(0.5)
    // Hiding behind the round's mean, it must read the round first, as ALIE and min-max do.
    expect(readsRound(Attack.parse({ kind: 'adaptive-flip', agent: 1, cover: 'round' }))).toBe(true)
    expect(readsRound(Attack.parse({ kind: 'adaptive-flip', agent: 1 }))).toBe(false)
  })

  it('refuses attacks on agents the run does not have', () => {
    expect(() => parseRunConfig({ agents: 3, quorum: 'majority', attacks: [{ kind: 'sign-flip', agent: 4 }] })).toThrow(expect.objectContaining({ name: 'ConfigError' }))
    expect(() => parseRunConfig({ agents: 3, quorum: 'majority', attacks: [{ kind: 'sign-flip', agent: 2 }, { kind: 'scale', agent: 2 }] })).toThrow(expect.objectContaining({ name: 'ConfigError' }))
  })
})

describe('a federation with a hostile member', () => {
  it('votes down a sign-flipping agent\'s updates every round, and the audit still passes', async () => {
    const config = smallConfig({ agents: 4, quorum: 2, rounds: 2, attacks: [{ kind: 'sign-flip', agent: 4, scale: 5 }] })
    const sim = await Simulation.create(config, { dir: await tempDir() })
    try {
      await sim.charter()
      for (let round = 1; round <= 2; round++) await sim.round(round)
      const hostile = sim.participants[3]?.did
      const state = sim.participants[0]?.state
      const theirs = [...(state?.proposals.values() ?? [])].filter(p => p.signed.issuer === hostile)
      expect(theirs.map(p => p.decision?.record.accepted)).toEqual([false, false])
      expect(state?.reputation.get(hostile ?? '')).toMatchObject({ accepted: 0, rejected: 2 })
      expect((await audit(sim.ledger, sim.store)).ok).toBe(true)
    } finally {
      await sim.close()
    }
  })

  it('fedavg-share moves the model by the accepted updates\' share of the round: the rejected one counts as zero', async () => {
    const roundOne = async (aggregation: 'fedavg' | 'fedavg-share'): Promise<{ before: Weights, after: Weights, audited: boolean }> => {
      const sim = await Simulation.create(smallConfig({ agents: 4, quorum: 2, rounds: 1, aggregation, attacks: [{ kind: 'sign-flip', agent: 4, scale: 5 }] }), { dir: await tempDir() })
      try {
        await sim.charter()
        const before = sim.participants[0]?.globalModel?.weights as Weights
        await sim.round(1)
        const state = sim.participants[0]?.state
        expect([...(state?.proposals.values() ?? [])].filter(p => p.decision?.record.accepted === false)).toHaveLength(1)
        return { before, after: sim.participants[0]?.globalModel?.weights as Weights, audited: (await audit(sim.ledger, sim.store)).ok }
      } finally {
        await sim.close()
      }
    }
    const plain = await roundOne('fedavg')
    const share = await roundOne('fedavg-share')
    expect(plain.audited && share.audited).toBe(true)
    // Four proposals of equal-ish size, three accepted: the step is Σ_accepted n / Σ_proposed n of FedAvg's.
    const ratios: number[] = []
    for (const [name, t] of share.after) {
      const base = (share.before.get(name) as { data: Float32Array }).data
      const fed = (plain.after.get(name) as { data: Float32Array }).data
      t.data.forEach((v, i) => { const d = (fed[i] as number) - (base[i] as number); if (Math.abs(d) > 1e-3) ratios.push((v - (base[i] as number)) / d) })
    }
    expect(ratios.length).toBeGreaterThan(0)
    const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length
    expect(mean).toBeGreaterThan(0.6)
    expect(mean).toBeLessThan(0.9)
    expect(ratios.reduce((a, b) => Math.max(a, b)) - ratios.reduce((a, b) => Math.min(a, b))).toBeLessThan(1e-2)
  })

  it('server momentum adds β times the previous round\'s step to the merge (none after a round that merged nothing), and the audit derives the same', async () => {
    const models = async (momentum: number): Promise<{ globals: Weights[], audited: boolean }> => {
      const sim = await Simulation.create(smallConfig({ agents: 3, quorum: 1, rounds: 2, momentum }), { dir: await tempDir() })
      try {
        await sim.charter()
        const globals = [sim.participants[0]?.globalModel?.weights as Weights]
        for (let round = 1; round <= 2; round++) {
          await sim.round(round)
          globals.push(sim.participants[0]?.globalModel?.weights as Weights)
        }
        expect(weightsSha256(sim.participants[2]?.globalModel?.weights as Weights)).toBe(weightsSha256(globals[2] as Weights))
        return { globals, audited: (await audit(sim.ledger, sim.store)).ok }
      } finally {
        await sim.close()
      }
    }
    expect(() => smallConfig({ momentum: 1 })).toThrow(expect.objectContaining({ name: 'ConfigError', code: 'ERR_CONFIG', cause: expect.objectContaining({ issues: [expect.objectContaining({ path: ['momentum'] })] }) }))
    expect(mergeRound({ weights: new Map(), step: new Map() }, [], new FederationState(), 1)).toEqual({ weights: new Map() })
    const plain = await models(0)
    const heavy = await models(0.5)
    expect(plain.audited && heavy.audited).toBe(true)
    // Round 1 has no step before it; round 2 trains from the same model, so only the momentum term differs.
    expect(weightsSha256(heavy.globals[1] as Weights)).toBe(weightsSha256(plain.globals[1] as Weights))
    const [w0, w1, plain2, heavy2] = [heavy.globals[0], heavy.globals[1], plain.globals[2], heavy.globals[2]] as Weights[]
    const expected = applyDelta(plain2 as Weights, delta(w1 as Weights, w0 as Weights), 0.5)
    let worst = 0
    for (const [name, t] of heavy2 as Weights) {
      const e = expected.get(name)?.data as Float32Array
      t.data.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - (e[i] as number))) })
    }
    expect(worst).toBeLessThan(1e-6)
    expect(weightsSha256(heavy2 as Weights)).not.toBe(weightsSha256(plain2 as Weights))
  })

  it('a member that turns in round 2 proposes and votes honestly in round 1 (merged, in good standing), then attacks (rejected)', async () => {
    const config = smallConfig({ agents: 4, quorum: 2, rounds: 2, attacks: [{ kind: 'collude', agent: 4, scale: 5, fromRound: 2 }] })
    const sim = await Simulation.create(config, { dir: await tempDir() })
    try {
      await sim.charter()
      for (let round = 1; round <= 2; round++) await sim.round(round)
      const turncoat = sim.participants[3]?.did
      const state = sim.participants[0]?.state as FederationState
      const theirs = [...state.proposals.values()].filter(p => p.signed.issuer === turncoat)
      expect(theirs.map(p => [p.signed.record.round, p.decision?.record.accepted])).toEqual([[1, true], [2, false]])
      expect(state.standing(theirs[1]?.block as string)).toBe('good')
      // Its votes: honest ones on round 1's honest updates, and a colluder's rejections of round 2's.
      const votesOn = (round: number): boolean[] => [...state.proposals.values()]
        .filter(p => p.signed.record.round === round && p.signed.issuer !== turncoat)
        .flatMap(p => [...p.votes.values()].filter(v => v.signed.issuer === turncoat).map(v => v.signed.record.accept))
      expect(votesOn(1).length).toBeGreaterThan(0)
      expect(votesOn(1).every(accept => accept)).toBe(true)
      expect(votesOn(2).length).toBeGreaterThan(0)
      expect(votesOn(2).some(accept => accept)).toBe(false)
      expect((await audit(sim.ledger, sim.store)).ok).toBe(true)
    } finally {
      await sim.close()
    }
  })

  it('a member that turns in round 2 trains round 1 as an honest member does: FedAvg\'s round 1 is the clean one', async () => {
    const clean = await runBaseline('fedavg', smallConfig({ agents: 3, rounds: 2 }))
    const turning = await runBaseline('fedavg', smallConfig({ agents: 3, rounds: 2, attacks: [{ kind: 'label-flip', agent: 3, fromRound: 2 }] }))
    expect(turning.rounds[1]?.metric.value).toBe(clean.rounds[1]?.metric.value)
    expect(turning.rounds[2]?.metric.value).not.toBe(clean.rounds[2]?.metric.value)
  })

  it('a free-rider copies another member\'s update instead of training, and every copy is refused (ReplayedUpdateError)', async () => {
    const config = smallConfig({ agents: 3, rounds: 2, attacks: [{ kind: 'free-ride', agent: 3 }] })
    const sim = await Simulation.create(config, { dir: await tempDir() })
    try {
      await sim.charter()
      for (let round = 1; round <= 2; round++) await sim.round(round)
      const freeRider = sim.participants[2]?.did
      const honest = sim.participants[0] as Participant
      expect([...honest.state.proposals.values()].filter(p => p.signed.issuer === freeRider)).toEqual([])
      const refused = (sim.rejections.get(honest.name) ?? []).map(r => r.error.name)
      expect(refused).toEqual(['ReplayedUpdateError', 'ReplayedUpdateError'])
    } finally {
      await sim.close()
    }
  })
})

describe('baselines', () => {
  it('centralized and FedAvg run on the same data and seeds, reproducibly', async () => {
    const config = smallConfig({ rounds: 1 })
    const central = await runBaseline('centralized', config)
    const fed = await runBaseline('fedavg', config)
    expect(central.rounds.map(r => r.round)).toEqual([0, 1])
    expect(fed.rounds[0]?.metric).toEqual(central.rounds[0]?.metric)
    expect((fed.rounds[1]?.metric.value ?? 0)).toBeGreaterThan(fed.rounds[0]?.metric.value ?? 1)
    expect((await runBaseline('fedavg', config)).modelHash).toBe(fed.modelHash)
  })

  it('FedAvg is the federation with every update accepted: members train alike, so the models are the same', async () => {
    const config = smallConfig({ rounds: 2, tolerance: 1 })
    const fed = await runBaseline('fedavg', config)
    const sim = await Simulation.create(config, { dir: await tempDir() })
    try {
      await sim.charter()
      for (let round = 1; round <= 2; round++) expect((await sim.round(round)).rejects).toBe(0)
      expect(weightsSha256(sim.participants[0]?.globalModel?.weights as Weights)).toBe(fed.modelHash)
    } finally {
      await sim.close()
    }
  })
})
