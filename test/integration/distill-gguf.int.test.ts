import { execFile } from 'node:child_process'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { parseRunConfig } from '../../src/federation/config.ts'
import { runFederation } from '../../src/federation/run.ts'
import { unloadGguf } from '../../src/llm/gguf.ts'
import { loadTask, TaskConfig, type Task } from '../../src/ml/task.ts'
import type { QaExample } from '../../src/ml/tasks/qa.ts'
import { weightsSha256 } from '../../src/ml/weights.ts'
import { createContentStore } from '../../src/storage/index.ts'
import { GgufTeacher } from '../../src/teachers/gguf.ts'
import { TeacherAnswer } from '../../src/teachers/index.ts'

const gemma = async (): Promise<string> => (await promisify(execFile)('scripts/models/gemma.sh', [], { timeout: 600_000 })).stdout.trim().split('\n').at(-1) as string

/**
 * Distillation from a teacher that tells its token distributions: Gemma 3 270M run
 * in-process by node-llama-cpp. Its answers carry, per generated token, the top candidates
 * with log-probabilities; the QA student reads them as soft targets (a KL term).
 */
describe('QA distillation from a GGUF teacher with token distributions', () => {
  afterAll(async () => { await unloadGguf() })

  it('answers greedily with its top candidates per token, the generated one first, spelling the answer', async () => {
    const teacher = new GgufTeacher({ path: await gemma(), topK: 5 })
    const answer = TeacherAnswer.parse(await teacher.ask('What are the symptoms of asthma?', { maxTokens: 24 }))
    expect(answer.tokens).toBeGreaterThan(3)
    expect(answer.tokens).toBeLessThanOrEqual(24)
    expect(answer.topK).toHaveLength(answer.tokens)
    expect(answer.topK?.map(c => c[0]?.[0]).join('').trim()).toBe(answer.text)
    for (const candidates of answer.topK ?? []) {
      expect(candidates.length).toBeGreaterThan(0)
      expect(candidates.length).toBeLessThanOrEqual(5)
      expect(candidates.every(([, logp]) => logp <= 0)).toBe(true)
      // Greedy: the generated token is the most likely one.
      expect(candidates.slice(1).every(([, logp]) => logp <= (candidates[0]?.[1] as number) + 1e-6)).toBe(true)
    }
    // Asked again: the same answer (greedy, one sequence at a time).
    expect((await teacher.ask('What are the symptoms of asthma?', { maxTokens: 24 })).text).toBe(answer.text)
  }, 600_000)

  it('the student learns its answers with soft targets where words are whole teacher tokens; weight 0 is plain cross-entropy', async () => {
    const teacher = new GgufTeacher({ path: await gemma() })
    const base = { kind: 'qa', trainLimit: 40, testLimit: 20, features: 2048, hidden: 16, maxWords: 300, minCount: 1 } as const
    const [withKl, without] = await Promise.all([loadTask(TaskConfig.parse(base)), loadTask(TaskConfig.parse({ ...base, kl: 0 }))]) as Array<Task<QaExample>>
    const [shard] = withKl?.shards(1, { seed: 1, partition: 'iid' }) ?? []
    if (withKl?.teaching === undefined || without === undefined || shard === undefined) throw new Error('no qa task')
    const taught: QaExample[] = []
    for (const e of shard.train.slice(0, 4)) {
      const answer = await teacher.ask(e.question, { maxTokens: 24 })
      taught.push(withKl.teaching.learn(e, answer.text, answer.topK))
    }
    const soft = taught.flatMap(e => e.soft ?? [])
    expect(soft.length).toBeGreaterThan(0)
    expect(soft.some(s => s !== undefined)).toBe(true)
    for (const s of soft.filter(s => s !== undefined)) expect(s.reduce((sum, [, p]) => sum + p, 0)).toBeCloseTo(1, 5)
    const init = withKl.initialWeights(1)
    const a = await withKl.train(init, { train: taught, val: [] }, { seed: 2 })
    const b = await without.train(init, { train: taught, val: [] }, { seed: 2 })
    expect(weightsSha256(a.weights)).not.toBe(weightsSha256(b.weights))
    expect([...a.weights.values()].every(t => t.data.every(Number.isFinite))).toBe(true)
  }, 600_000)

  it('a federation distils from it: every answer it paid for, with its distributions, is in the store', async () => {
    const out = await mkdtemp(join(tmpdir(), 'conclave-distill-gguf-'))
    const config = parseRunConfig({
      agents: 2, rounds: 1, seed: 3, quorum: 'majority', ledger: { kind: 'tangle', difficulty: 4 },
      task: { kind: 'qa', trainLimit: 24, testLimit: 10, features: 2048, hidden: 16, maxWords: 200, minCount: 1 },
      teacher: { kind: 'gguf', path: await gemma(), maxTokens: 16, budgetTokens: 16 * 4 },
      agent: { driver: 'autopilot' }
    })
    const report = await runFederation(config, { out })
    expect(report.rounds[1]?.proposals).toBe(2)
    const index = JSON.parse(await readFile(join(out, 'agents', 'agent-1', 'teacher-index.json'), 'utf8')) as { answers: Record<string, string> }
    const store = await createContentStore({ kind: 'helia' }, { dir: join(out, 'store') })
    try {
      const answer = TeacherAnswer.parse(JSON.parse(new TextDecoder().decode(await store.get(Object.values(index.answers)[0] as string))))
      expect(answer.teacher).toBe('gguf:gemma-3-270m-q4_k_m.gguf')
      expect(answer.topK?.length).toBe(answer.tokens)
    } finally {
      await store.close()
    }
  }, 600_000)
})
