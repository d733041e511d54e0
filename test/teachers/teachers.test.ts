import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createContentStore } from '../../src/storage/index.ts'
import { CachedTeacher } from '../../src/teachers/cache.ts'
import { DatasetTeacher } from '../../src/teachers/dataset.ts'
import type { AskOptions, Teacher, TeacherAnswer } from '../../src/teachers/index.ts'
import { OllamaTeacher } from '../../src/teachers/ollama.ts'
import { tempDir } from '../federation/helpers.ts'

const medquad = readFileSync(new URL('../../data/medquad/train.jsonl', import.meta.url), 'utf8').trim().split('\n').slice(0, 50).map(l => JSON.parse(l) as { question: string, answer: string })

/** Counts what reaches the real teacher behind the cache. */
class Counting implements Teacher {
  readonly name: string
  calls = 0
  readonly #inner: Teacher
  constructor (inner: Teacher) { this.#inner = inner; this.name = inner.name }
  async ask (q: string, o?: AskOptions): Promise<TeacherAnswer> { this.calls++; return this.#inner.ask(q, o) }
}

describe('teachers', () => {
  it('the dataset teacher answers its own questions (cut to the token cap) and refuses others by name', async () => {
    const teacher = new DatasetTeacher(medquad)
    const pair = medquad[3] as { question: string, answer: string }
    const answer = await teacher.ask(`  ${pair.question.toUpperCase()} `, { maxTokens: 12 })
    expect(answer.text).toBe(pair.answer.split(/\s+/).slice(0, 12).join(' '))
    expect(answer.tokens).toBe(12)
    await expect(teacher.ask('What is the airspeed of an unladen swallow?')).rejects.toMatchObject({ name: 'TeacherError', code: 'ERR_TEACHER' })
  })

  it('stores every answer content-addressed and never pays for the same query twice, across restarts', async () => {
    const dir = await tempDir()
    const store = await createContentStore({ kind: 'helia' }, { dir: join(dir, 'store') })
    try {
      const inner = new Counting(new DatasetTeacher(medquad))
      const cached = await CachedTeacher.open(inner, store, join(dir, 'teacher.json'), { budgetTokens: 100 })
      const q = (medquad[0] as { question: string }).question
      const first = await cached.ask(q, { maxTokens: 40 })
      expect(first.cached).toBe(false)
      expect(JSON.parse(new TextDecoder().decode(await store.get(first.cid))).text).toBe(first.text)
      const again = await cached.ask(q, { maxTokens: 40 })
      expect(again).toMatchObject({ cached: true, cid: first.cid, text: first.text })
      expect(inner.calls).toBe(1)
      expect(cached.spent).toBe(first.tokens)

      const reopened = await CachedTeacher.open(inner, store, join(dir, 'teacher.json'), { budgetTokens: 0 })
      expect((await reopened.ask(q, { maxTokens: 40 })).cached).toBe(true) // free: already paid for
      expect(inner.calls).toBe(1)
      await expect(reopened.ask((medquad[1] as { question: string }).question, { maxTokens: 40 })).rejects.toMatchObject({ name: 'BudgetExceededError', code: 'ERR_BUDGET_EXCEEDED' })
      await expect(cached.ask((medquad[2] as { question: string }).question, { maxTokens: 80 })).rejects.toMatchObject({ name: 'BudgetExceededError', code: 'ERR_BUDGET_EXCEEDED' })
    } finally {
      await store.close()
    }
  })

  it('refuses a damaged cache index by name', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'teacher.json'), JSON.stringify({ version: 1, answers: { nothex: 'x' } }))
    const store = await createContentStore({ kind: 'helia' }, { dir: join(dir, 'store') })
    try {
      await expect(CachedTeacher.open(new DatasetTeacher([]), store, join(dir, 'teacher.json'))).rejects.toMatchObject({ name: 'DamagedFileError', code: 'ERR_DAMAGED_FILE' })
    } finally {
      await store.close()
    }
  })

  it('an Ollama teacher with no server fails with the command that fixes it: an outage, not a question it cannot answer', async () => {
    const teacher = new OllamaTeacher({ model: 'meditron', url: 'http://127.0.0.1:9' })
    await expect(teacher.ask('What causes asthma?')).rejects.toMatchObject({ name: 'BackendUnavailableError', code: 'ERR_BACKEND_UNAVAILABLE', message: expect.stringContaining('services:up') })
  })
})
