import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { main } from '../../src/cli/main.ts'
import { RunReport } from '../../src/federation/report.ts'
import { assertOllamaModel, ollamaCompleter } from '../../src/llm/ollama.ts'
import { createContentStore } from '../../src/storage/index.ts'
import { CachedTeacher } from '../../src/teachers/cache.ts'
import { OllamaTeacher } from '../../src/teachers/ollama.ts'

/**
 * A real Ollama server (scripts/services/ollama.sh: pinned, built from the Go module proxy)
 * holding the project's Gemma 3 270M as `conclave-gemma3`. Gemma 3 has no tool tags, so
 * agents answer under Ollama's `format` JSON schema.
 */
const url = `http://127.0.0.1:${process.env.OLLAMA_PORT ?? '11434'}`
const model = process.env.OLLAMA_MODEL ?? 'conclave-gemma3'
// The CLI finds Ollama through OLLAMA_HOST: point it at the server the suite started.
process.env.OLLAMA_HOST = url

const question = 'What are the symptoms of type 2 diabetes?'

describe('Ollama (real server, Gemma 3 270M)', () => {
  it('has the project\'s model; a missing model is refused by name, with the command that fixes it', async () => {
    await assertOllamaModel(model, url)
    const missing = assertOllamaModel('no-such-model', url)
    await expect(missing).rejects.toMatchObject({ name: 'ModelNotFoundError', code: 'ERR_MODEL_NOT_FOUND' })
  })

  it('answers under a JSON schema with JSON that matches it', async () => {
    const schema = {
      type: 'object',
      properties: { organ: { type: 'string' }, confident: { type: 'boolean' } },
      required: ['organ', 'confident'],
      additionalProperties: false
    }
    const reply = await ollamaCompleter(model, url, { temperature: 0, seed: 7 }).complete(
      { system: 'You are a medical expert. Reply in JSON.', user: 'Which organ produces insulin?' }, schema)
    const parsed = JSON.parse(reply) as Record<string, unknown>
    expect(Object.keys(parsed).sort()).toEqual(['confident', 'organ'])
    expect(typeof parsed.organ).toBe('string')
    expect(typeof parsed.confident).toBe('boolean')
  })

  it('as a teacher: answers within the token cap, and the same question gets the same answer', async () => {
    const teacher = new OllamaTeacher({ model, url })
    const first = await teacher.ask(question, { maxTokens: 32 })
    expect(first.teacher).toBe(`ollama:${model}`)
    expect(first.text.length).toBeGreaterThan(0)
    expect(first.tokens).toBeGreaterThan(0)
    expect(first.tokens).toBeLessThanOrEqual(32)
    // Another question in between, as in distillation. Asked twice in a row, the question
    // would be answered from Ollama's KV cache: its last prompt token is then evaluated
    // alone instead of in a batch, and that rounding difference can tip greedy decoding
    // onto another answer (measured with v0.9.6 on CPU). The CachedTeacher below is what
    // makes a repeat free and identical.
    await teacher.ask('What causes asthma?', { maxTokens: 8 })
    expect(await teacher.ask(question, { maxTokens: 32 })).toEqual(first)
  })

  it('behind the cache: a second ask is read back from the store, not asked again', async () => {
    const store = await createContentStore({ kind: 'kubo', url: `http://127.0.0.1:${process.env.KUBO_API_PORT ?? '5001'}` }, { dir: '/unused' })
    try {
      const cached = await CachedTeacher.open(new OllamaTeacher({ model, url }), store, join(await mkdtemp(join(tmpdir(), 'conclave-teacher-')), 'teacher.json'))
      const paid = await cached.ask(question, { maxTokens: 24 })
      const again = await cached.ask(question, { maxTokens: 24 })
      expect(paid.cached).toBe(false)
      expect(again).toMatchObject({ cached: true, cid: paid.cid, text: paid.text, tokens: paid.tokens })
      expect({ misses: cached.misses, hits: cached.hits, spent: cached.spent }).toEqual({ misses: 1, hits: 1, spent: paid.tokens })
    } finally {
      await store.close()
    }
  })

  it('drives agents: `conclave run --llm ollama:conclave-gemma3` completes a round and its audit passes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conclave-ollama-'))
    // Small data, light proof of work, and 4 model steps per turn (enough to train, publish
    // and anchor): the model's calls are what this test is about, each a few seconds on CPU.
    await writeFile(join(dir, 'config.yaml'), JSON.stringify({ task: { kind: 'classify', trainLimit: 900, testLimit: 400 }, ledger: { kind: 'tangle', difficulty: 4 }, agent: { maxSteps: 4 } }))
    const out = join(dir, 'run')
    let stdout = ''
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => { stdout += String(c); return true })
    let code: number
    try {
      code = await main(['run', '--agents', '2', '--rounds', '1', '--seed', '3', '--llm', `ollama:${model}`, '--config', join(dir, 'config.yaml'), '--out', out])
    } finally {
      spy.mockRestore()
    }
    expect(stdout).toMatch(/audit ok: .* replayed model matches/)
    expect(code).toBe(0)
    const report = RunReport.parse(JSON.parse(await readFile(join(out, 'report.json'), 'utf8')))
    const round = report.rounds.find(r => r.round === 1)
    expect(round?.proposals).toBeGreaterThan(0)
    expect((round?.accepts ?? 0) + (round?.rejects ?? 0)).toBe(round?.proposals)
    for (const { llm } of report.agents) {
      expect(llm?.calls).toBe((llm?.valid ?? 0) + (llm?.retried ?? 0))
      expect(llm?.fallback).toBeLessThanOrEqual(llm?.retried ?? 0)
    }
    // the model itself, not only the policy, drove part of the protocol
    expect(report.agents.reduce((s, a) => s + (a.llm?.valid ?? 0), 0)).toBeGreaterThan(0)
    process.stderr.write(`ollama agents: ${JSON.stringify(report.agents.map(a => a.llm))}\n`)
  }, 900_000)
})
