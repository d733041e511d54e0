import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseRunConfig } from '../../src/federation/config.ts'
import { runFederation } from '../../src/federation/run.ts'
import { createContentStore } from '../../src/storage/index.ts'
import { TeacherAnswer } from '../../src/teachers/index.ts'

const url = `http://127.0.0.1:${process.env.OLLAMA_PORT ?? '11434'}`
const model = process.env.OLLAMA_MODEL ?? 'conclave-gemma3'

/**
 * Distillation from a model served by Ollama (the project's Gemma 3 270M, standing in for
 * LLaMA or BioGPT): each agent asks it its own questions within a token budget, learns its
 * answers, and the answers it paid for are in the federation's store, addressed by content.
 */
describe('QA federation distilling from an Ollama teacher', () => {
  it('asks the served model within each agent\'s budget, trains on its answers, and keeps every answer content-addressed', async () => {
    const out = await mkdtemp(join(tmpdir(), 'conclave-distill-ollama-'))
    const config = parseRunConfig({
      agents: 2, rounds: 1, seed: 3, quorum: 'majority', ledger: { kind: 'tangle', difficulty: 4 },
      task: { kind: 'qa', trainLimit: 40, testLimit: 20, features: 2048, hidden: 16, maxWords: 200, minCount: 1 },
      teacher: { kind: 'ollama', model, url, maxTokens: 24, budgetTokens: 24 * 8 },
      agent: { driver: 'autopilot' }
    })
    const report = await runFederation(config, { out })
    expect(report.rounds[1]?.proposals).toBe(2)
    expect(report.rounds[1]?.metric.name).toBe('bleu')
    for (const agent of report.agents) {
      // The budget, not the question count, stops each agent: its budget covers 8 answers at the cap.
      expect(agent.teacher?.asked).toBeGreaterThan(0)
      expect(agent.teacher?.tokens).toBeLessThanOrEqual(24 * 8)
      expect(agent.teacher?.undistilled).toBe(agent.trainExamples + agent.valExamples - (agent.teacher?.asked ?? 0))
    }
    const index = JSON.parse(await readFile(join(out, 'agents', 'agent-1', 'teacher-index.json'), 'utf8')) as { answers: Record<string, string> }
    const cids = Object.values(index.answers)
    expect(cids).toHaveLength(report.agents[0]?.teacher?.asked as number)
    const store = await createContentStore({ kind: 'helia' }, { dir: join(out, 'store') })
    try {
      const answer = TeacherAnswer.parse(JSON.parse(new TextDecoder().decode(await store.get(cids[0] as string))))
      expect(answer.teacher).toBe(`ollama:${model}`)
      expect(answer.text.length).toBeGreaterThan(0)
      expect(answer.tokens).toBeLessThanOrEqual(24)
    } finally {
      await store.close()
    }
  }, 600_000)
})
