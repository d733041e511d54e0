import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Charter, Decision, Vote } from '../../src/core/records.ts'
import { audit } from '../../src/federation/audit.ts'
import { putBytes } from '../../src/federation/content.ts'
import type { DriverFactory } from '../../src/federation/driver.ts'
import { charterOf } from '../../src/federation/enrol.ts'
import type { Participant } from '../../src/federation/participant.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import { decodeUpdate, topkCount } from '../../src/ml/compression.ts'
import { supportCosine } from '../../src/ml/similarity.ts'
import { encodeRawSafetensors, type RawTensor } from '../../src/ml/safetensors.ts'
import { toSafetensors, type Weights } from '../../src/ml/weights.ts'
import { byHand, errorsFor, inject, smallConfig, tempDir } from './helpers.ts'
import type { Compression } from '../../src/core/terms.ts'

const TOPK: Compression = { kind: 'topk', fraction: 0.05 }

/** A topk update that sends coordinate 0 of every tensor k times, each time 1000: a naive decoder would add them up. */
function amplifying (layout: Weights, fraction: number): Uint8Array {
  const raw = new Map<string, RawTensor>()
  for (const [name, t] of layout) {
    const k = topkCount(t.data.length, fraction)
    raw.set(`${name}#indices`, { dtype: 'I32', shape: [k], bytes: new Uint8Array(new Int32Array(k).buffer) })
    raw.set(`${name}#values`, { dtype: 'F32', shape: [k], bytes: new Uint8Array(new Float32Array(k).fill(1000).buffer) })
  }
  return encodeRawSafetensors(raw, { compression: 'topk', fraction: String(fraction) })
}

describe('a charter\'s compression', () => {
  const sims: Simulation[] = []
  afterEach(async () => { vi.restoreAllMocks(); for (const sim of sims.splice(0)) await sim.close() })

  async function federation (compression: Compression, options: { driver?: DriverFactory, dir?: string } = {}): Promise<Simulation> {
    const sim = await Simulation.create(smallConfig({ compression }), { dir: options.dir ?? await tempDir(), driver: options.driver })
    sims.push(sim)
    return sim
  }

  /** Bytes of each proposal's update as stored, against the F32 model's. */
  async function proposalBytes (sim: Simulation): Promise<number[]> {
    const state = sim.participants[0]?.state
    return Promise.all([...(state?.proposals.values() ?? [])].map(async p => (await sim.store.get(p.signed.record.delta.cid)).length))
  }

  it.each([
    { compression: { kind: 'int8' } as const, most: 0.26 },
    { compression: TOPK, most: 0.11 }
  ])('a run under $compression.kind writes it in the charter, sends smaller updates, and audits ok with the model everyone holds', async ({ compression, most }) => {
    const sim = await federation(compression)
    await sim.charter()
    await sim.round(1)
    const last = await sim.round(2)
    expect(sim.participants[0]?.state.charter?.record.compression).toEqual(compression)
    const report = await audit(sim.ledger, sim.store)
    expect(report).toMatchObject({ ok: true, proposals: 6, checkpoints: 2, modelHash: last.modelHash, rejected: [] })
    const dense = toSafetensors(sim.participants[0]?.globalModel?.weights as Weights).length
    const bytes = await proposalBytes(sim)
    expect(bytes).toHaveLength(6)
    for (const b of bytes) expect(b / dense).toBeLessThan(most)
    // Something was merged: the updates decode to a model that moved.
    expect(last.accepts).toBeGreaterThan(0)
  })

  it('under topk, a voter measures a peer\'s norm against its own update as topk sends it, and its direction where it sends', async () => {
    const sim = await federation(TOPK)
    await sim.charter()
    await sim.round(1)
    await sim.round(2)
    const state = sim.participants[0]?.state
    const geometry = new Map<string, { normRatio?: number, cosine?: number }>()
    for (const p of state?.proposals.values() ?? []) {
      for (const [voter, { signed }] of p.votes) {
        const m = signed.record.measurement
        if (m === undefined || 'unusable' in m || m.geometry === undefined) throw new Error('a vote without geometry')
        geometry.set(`${p.signed.record.round} ${voter} ${p.signed.issuer}`, m.geometry)
      }
    }
    expect(geometry.size).toBe(12)
    for (const [key, there] of geometry) {
      const [round, voter, owner] = key.split(' ')
      const back = geometry.get(`${round} ${owner} ${voter}`)
      // ‖a‖/‖b‖ · ‖b‖/‖a‖ = 1 only when both sides compare the forms sent
      expect((there.normRatio ?? 0) * (back?.normRatio ?? 0)).toBeCloseTo(1, 6)
    }
    // Directions: a peer's sparse update on the coordinates it sends, against all the voter would send
    // before choosing its own top k. In round 1 nothing is owed yet: that is the voter's dense update,
    // which the same federation uncompressed proposes (same model, shards and training seeds).
    const plain = await federation({ kind: 'none' })
    await plain.charter()
    await plain.round(1)
    const layout = sim.participants[0]?.globalModel?.weights as Weights
    const updates = async (s: Simulation, compression: Compression): Promise<Map<string, Weights>> => new Map(await Promise.all(
      [...(s.participants[0]?.state.proposals.values() ?? [])].filter(p => p.signed.record.round === 1)
        .map(async p => [s.participants.findIndex(q => q.did === p.signed.issuer).toString(), decodeUpdate(await s.store.get(p.signed.record.delta.cid), compression, layout)] as const)))
    const sent = await updates(sim, TOPK)
    const dense = await updates(plain, { kind: 'none' })
    const index = (did: string): string => sim.participants.findIndex(q => q.did === did).toString()
    let compared = 0
    for (const [key, there] of geometry) {
      const [round, voter, owner] = key.split(' ')
      if (round !== '1') continue
      expect(there.cosine).toBeCloseTo(supportCosine(sent.get(index(owner ?? '')) as Weights, dense.get(index(voter ?? '')) as Weights), 6)
      compared++
    }
    expect(compared).toBe(6)
  })

  it('no compression stays off the charter: the charter runs always wrote', async () => {
    const sim = await federation({ kind: 'none' })
    const charter = await charterOf(sim.config, sim.task, sim.store, sim.participants.map(p => p.did))
    expect('compression' in charter).toBe(false)
  })

  describe('an update whose bytes break the compression', () => {
    /** Every participant votes only when told. */

    it('is judged unusable by every peer, and fails the audit once a decision merges it', async () => {
      const sim = await federation(TOPK, { driver: byHand })
      // Terms with no geometry bounds, so a forged measurement needs only scores to pass the rule.
      const charter = await charterOf(sim.config, sim.task, sim.store, sim.participants.map(p => p.did))
      const { robustness: _, ...terms } = charter.acceptance as NonNullable<Charter['acceptance']>
      const [founder, second, third] = sim.participants as [Participant, Participant, Participant]
      await founder.publishRecord({ ...charter, acceptance: terms })
      await sim.settle()
      const global = founder.globalModel as NonNullable<Participant['globalModel']>
      const ref = await putBytes(sim.store, amplifying(global.weights, TOPK.fraction))
      const proposal = await inject(sim, founder.identity, { type: 'proposal', federation: sim.config.federation, round: 1, base: global.ref.cid, delta: ref, numSamples: 10 })
      expect(errorsFor(sim, proposal)).toEqual([])

      // Honest peers find it unusable, say why, and can only reject it.
      for (const peer of [second, third]) {
        expect(await peer.evaluate(proposal)).toMatchObject({ passes: false, unusable: 'ERR_INVALID_WEIGHTS' })
        await expect(peer.vote(proposal, true)).rejects.toMatchObject({ name: 'UnusableUpdateError' })
      }
      // Two colluding peers sign accepts with made-up measurements (nobody can check those); a colluding recorder counts them.
      const made: Vote = { type: 'vote', federation: sim.config.federation, round: 1, proposal, accept: true, score: 0, rationale: 'looks fine', measurement: { before: 0.5, after: 0.5, initial: 0.4 } }
      const votes = [await inject(sim, second.identity, made), await inject(sim, third.identity, made)]
      expect(votes.flatMap(v => errorsFor(sim, v))).toEqual([])
      const derived = founder.state.derive(proposal)
      expect(derived.accepted).toBe(true)
      const recorder = sim.participants.find(q => q.did === founder.state.recorder(1)) as Participant
      const decision: Decision = { type: 'decision', federation: sim.config.federation, round: 1, proposal, proposer: founder.did, accepted: true, accepts: derived.accepts, rejects: derived.rejects, required: derived.required, votes: [...derived.votes] }
      // A window on, so the round may close with the others' proposals missing (cut-short.test.ts).
      const now = Date.now()
      vi.spyOn(Date, 'now').mockImplementation(() => now + (sim.config.windowSeconds + 1) * 1000)
      const block = await inject(sim, recorder.identity, decision)
      expect(errorsFor(sim, block)).toEqual([])
      vi.restoreAllMocks()

      const report = await audit(sim.ledger, sim.store)
      expect(report.ok).toBe(false)
      expect(report.firstFailure).toMatchObject({ block, type: 'decision', error: { name: 'InvalidWeightsError', code: 'ERR_INVALID_WEIGHTS' } })
      expect(report.firstFailure?.error.message).toContain(proposal)
    })
  })

  it('a member restarted between rounds owes what it owed: the same model as a run never stopped, and another without its residual', async () => {
    const runs: string[] = []
    for (const restart of ['never', 'kept', 'lost'] as const) {
      const dir = await tempDir()
      const sim = await federation(TOPK, { dir })
      await sim.charter()
      await sim.round(1)
      if (restart !== 'never') {
        const own = join(dir, 'agents', 'agent-2')
        expect((await readdir(own)).filter(f => f.startsWith('residual-'))).toEqual(['residual-1.safetensors'])
        if (restart === 'lost') await rm(join(own, 'residual-1.safetensors'))
        await sim.restart(1)
      }
      runs.push((await sim.round(2)).modelHash)
    }
    const [never, kept, lost] = runs
    expect(kept).toBe(never)
    expect(lost).not.toBe(never)
  })
})
