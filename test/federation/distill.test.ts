import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runBaseline } from '../../src/federation/baselines.ts'
import { distil } from '../../src/federation/distill.ts'
import type { DriverFactory } from '../../src/federation/driver.ts'
import { runFederation } from '../../src/federation/run.ts'
import { Simulation } from '../../src/federation/simulation.ts'
import type { Teaching } from '../../src/ml/task.ts'
import { createContentStore } from '../../src/storage/index.ts'
import { CachedTeacher } from '../../src/teachers/cache.ts'
import { DatasetTeacher } from '../../src/teachers/dataset.ts'
import { smallConfig, tempDir } from './helpers.ts'

const qa = { kind: 'qa', trainLimit: 300, testLimit: 40, features: 4096, hidden: 32, maxWords: 300 } as const

interface Card { q: string, a?: string }
const cards: Teaching<Card> = { question: c => c.q, learn: (c, a) => ({ ...c, a }), taught: c => c.a !== undefined, pairs: [] }

/** Drives nothing: the test calls the participant itself, as an agent's tools would. */
const hands: DriverFactory = async () => ({ openRound: async () => {}, busy: false, idle: async () => {}, close: async () => {} })

describe('distillation', () => {
  it('asks in order, skips what the teacher cannot answer (once), and stops where the budget ends', async () => {
    const dir = await tempDir()
    const store = await createContentStore({ kind: 'helia' }, { dir: join(dir, 'store') })
    try {
      const teacher = await CachedTeacher.open(new DatasetTeacher([{ question: 'q1', answer: 'one two' }, { question: 'q3', answer: 'three' }, { question: 'q4', answer: 'four' }]), store, join(dir, 'index.json'), { budgetTokens: 6 })
      const failed = new Set<string>()
      const first = await distil(cards, [{ q: 'q1' }, { q: 'q2' }, { q: 'q3' }, { q: 'q4' }], teacher, { maxTokens: 3, failed })
      // q1 and q3 cost 2 + 1 tokens; q2 is unknown; q4 would need a 3-token cap but 3 are left… exactly enough.
      expect(first.report).toEqual({ asked: 3, cached: 0, failed: 1, tokens: 4, pending: 0, exhausted: false })
      expect(first.examples.map(c => c.a)).toEqual(['one two', undefined, 'three', 'four'])
      expect(failed).toEqual(new Set(['q2']))
      // Asking again costs nothing (cached), and q2 is not asked again.
      const again = await distil(cards, [{ q: 'q1' }, { q: 'q2' }], teacher, { maxTokens: 3, failed })
      expect(again.report).toMatchObject({ asked: 0, cached: 1, failed: 0, tokens: 0 })
      const broke = await distil(cards, [{ q: 'q4' }, { q: 'q5' }, { q: 'q6' }], teacher, { maxTokens: 3, limit: 5 })
      expect(broke.report).toMatchObject({ cached: 1, exhausted: true, pending: 2 })
    } finally {
      await store.close()
    }
  })

  it('an autopilot federation distils every question, then learns answers and votes; the report says what the teacher cost', async () => {
    const out = await tempDir()
    const report = await runFederation(smallConfig({ task: qa, rounds: 1, agent: { driver: 'autopilot' } }), { out })
    expect(report.rounds[1]?.proposals).toBe(3)
    expect(report.rounds[1]?.metric.name).toBe('bleu')
    expect(report.rounds[1]?.metric.value).toBeGreaterThan(report.rounds[0]?.metric.value as number)
    for (const agent of report.agents) {
      expect(agent.teacher).toMatchObject({ asked: agent.trainExamples + agent.valExamples, cached: 0, undistilled: 0 })
      expect(agent.teacher?.tokens).toBeGreaterThan(0)
    }
    expect(report.rounds[1]?.phases.distill).toBeGreaterThan(0)
  })

  it('a budget caps what each agent pays; it trains and judges on what it could afford', async () => {
    const out = await tempDir()
    const report = await runFederation(smallConfig({ task: qa, rounds: 1, teacher: { kind: 'dataset', budgetTokens: 600, maxTokens: 20 }, agent: { driver: 'autopilot' } }), { out })
    for (const agent of report.agents) {
      expect(agent.teacher?.tokens).toBeLessThanOrEqual(600)
      expect(agent.teacher?.asked).toBeGreaterThanOrEqual(600 / 20)
      expect(agent.teacher?.undistilled).toBe(agent.trainExamples + agent.valExamples - (agent.teacher?.asked ?? 0))
    }
    expect(report.rounds[1]?.proposals).toBe(3)
  })

  it('an agent that has not distilled may neither train nor judge; it distils in steps, validation questions first', async () => {
    const sim = await Simulation.create(smallConfig({ task: qa }), { dir: await tempDir(), driver: hands })
    try {
      await sim.charter()
      const [a, b] = sim.participants
      if (a === undefined || b === undefined) throw new Error('no participants')
      const total = a.undistilled
      await expect(a.train(1)).rejects.toMatchObject({ name: 'UntaughtError', code: 'ERR_UNTAUGHT' })
      const step = await a.distill({ limit: 5 })
      expect(step).toMatchObject({ asked: 5, cached: 0, pending: total - 5, exhausted: false })
      expect(a.undistilled).toBe(total - 5)
      // Five validation questions answered, no training question yet.
      await expect(a.train(1)).rejects.toMatchObject({ name: 'UntaughtError', code: 'ERR_UNTAUGHT' })
      await a.distill()
      expect(a.undistilled).toBe(0)
      await b.distill()
      const proposal = await a.propose(1)
      await sim.settle()
      const evaluation = await b.evaluate(proposal)
      expect(evaluation.unusable).toBeUndefined()
      expect(Number.isFinite(evaluation.measurement?.before)).toBe(true)
      expect(Number.isFinite(evaluation.measurement?.after)).toBe(true)
      // A peer that can judge but not yet train has no update of its own to measure against:
      // the proposal is judged without one, not refused for the judge's own shortcoming.
      const c = sim.participants[2]
      if (c === undefined) throw new Error('no third participant')
      await c.distill({ limit: sim.shards[2]?.val.length })
      await expect(c.train(1)).rejects.toMatchObject({ name: 'UntaughtError' })
      const unready = await c.evaluate(proposal)
      expect(unready.unusable).toBeUndefined()
      expect(unready.geometry?.normRatio).toBeUndefined()
    } finally {
      await sim.close()
    }
  })

  it('baselines ask the teacher everything first; local is agent 1 alone on its share', async () => {
    const config = smallConfig({ task: qa, rounds: 1 })
    const [central, local] = [await runBaseline('centralized', config), await runBaseline('local', config)]
    expect(central.rounds.map(r => r.metric.name)).toEqual(['bleu', 'bleu'])
    expect(central.rounds[1]?.metric.value).toBeGreaterThan(central.rounds[0]?.metric.value as number)
    expect(local.rounds[0]?.metric.value).toBe(central.rounds[0]?.metric.value)
    expect(local.modelHash).not.toBe(central.modelHash)
  })

  it('refuses to distil a task that learns from labels', async () => {
    const sim = await Simulation.create(smallConfig(), { dir: await tempDir(), driver: hands })
    try {
      expect(sim.participants[0]?.undistilled).toBe(0)
      await expect(sim.participants[0]?.distill()).rejects.toMatchObject({ name: 'NothingToDistilError', code: 'ERR_NOTHING_TO_DISTIL' })
    } finally {
      await sim.close()
    }
  })
})
