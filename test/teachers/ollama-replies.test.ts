import { execFileSync } from 'node:child_process'
import { symlink, writeFile } from 'node:fs/promises'
import { createServer, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { distil } from '../../src/federation/distill.ts'
import { autoDistil, undistilled } from '../../src/federation/steps/distill.ts'
import type { Teaching } from '../../src/ml/task.ts'
import { createContentStore, type ContentStore } from '../../src/storage/index.ts'
import { CachedTeacher, MAX_INDEX_BYTES } from '../../src/teachers/cache.ts'
import { OllamaTeacher } from '../../src/teachers/ollama.ts'
import { tempDir } from '../federation/helpers.ts'

interface Card { q: string, a?: string }
const cards: Teaching<Card> = { question: c => c.q, learn: (c, a) => ({ ...c, a }), taught: c => c.a !== undefined, pairs: [] }

const closing: Array<() => Promise<void>> = []
afterEach(async () => { for (const close of closing.splice(0)) await close() })

/** A stand-in for Ollama's /api/generate that answers every request with `handle`. */
async function ollama (handle: (res: ServerResponse) => void): Promise<string> {
  const server = createServer((req, res) => { req.resume(); req.on('end', () => handle(res)) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  closing.push(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}
const generated = (fields: object): string => JSON.stringify({ model: 'm', created_at: '2025-01-01T00:00:00Z', done: true, response: 'an answer', eval_count: 2, ...fields })
const replying = async (body: string | Buffer): Promise<string> => ollama(res => { res.setHeader('content-type', 'application/json'); res.end(body) })

async function cachedStore (): Promise<{ dir: string, store: ContentStore }> {
  const dir = await tempDir()
  const store = await createContentStore({ kind: 'helia' }, { dir: join(dir, 'store') })
  closing.push(async () => { await store.close() })
  return { dir, store }
}

describe('an Ollama teacher’s bad answers', () => {
  const bad: Array<[string, string | Buffer]> = [
    ['an answer over 100 000 characters', generated({ response: 'x'.repeat(120_000) })],
    ['a negative eval_count', generated({ eval_count: -5 })],
    ['a fractional eval_count', generated({ eval_count: 1.5 })],
    ['a response that is no string', generated({ response: 42 })],
    ['an empty answer', generated({ response: '' })],
    ['an answer of blanks', generated({ response: ' \n\t ' })],
    ['a reply that is no JSON', '{nope'],
    // Found red-teaming: a server answering for another model was taken (and cached) as ollama:m.
    ['an answer for another model than asked', generated({ model: 'tinyllama:1.1b' })],
    ['a reply that names no model', generated({ model: undefined })],
    // Found red-teaming: invalid bytes were decoded to U+FFFD and taught.
    ['an answer with bytes that are no UTF-8', Buffer.concat([Buffer.from('{"model":"m","done":true,"response":"bad '), Buffer.from([0xff, 0xfe]), Buffer.from(' bytes"}')])]
  ]
  for (const [what, body] of bad) {
    it(`${what} is a TeacherError: the question is noted as unanswerable, distillation goes on`, async () => {
      const url = await replying(body)
      await expect(new OllamaTeacher({ model: 'm', url }).ask('q')).rejects.toMatchObject({ name: 'TeacherError' })
      const { dir, store } = await cachedStore()
      const teacher = await CachedTeacher.open(new OllamaTeacher({ model: 'm', url }), store, join(dir, 'index.json'))
      const failed = new Set<string>()
      const { report, examples } = await distil(cards, [{ q: 'a' }, { q: 'b' }], teacher, { maxTokens: 8, failed })
      expect(report).toMatchObject({ asked: 0, failed: 2, pending: 0 })
      expect(failed).toEqual(new Set(['a', 'b']))
      expect(examples.map(c => c.a)).toEqual([undefined, undefined])
      // Nothing was cached or paid for: asked again later, the teacher is asked again.
      expect(teacher.has('a', { maxTokens: 8 })).toBe(false)
      expect(teacher.spent).toBe(0)
    })
  }

  it('a cache answer that no longer passes the schema (an empty answer cached before) is a TeacherError, not a ZodError', async () => {
    const { dir, store } = await cachedStore()
    const lenient = { name: 't', ask: async (question: string) => ({ teacher: 't', question, text: 'fine', tokens: 1 }) }
    const index = join(dir, 'index.json')
    const first = await CachedTeacher.open(lenient, store, index)
    await first.ask('q')
    // The index now points at an answer; replace what it points at by an answer with an empty text.
    const { readFile } = await import('node:fs/promises')
    const empty = await store.put(new TextEncoder().encode(JSON.stringify({ teacher: 't', question: 'q', text: '', tokens: 0 })))
    const saved = JSON.parse(await readFile(index, 'utf8')) as { version: 1, answers: Record<string, string> }
    for (const key of Object.keys(saved.answers)) saved.answers[key] = empty
    await writeFile(index, JSON.stringify(saved))
    const reopened = await CachedTeacher.open(lenient, store, index)
    await expect(reopened.ask('q')).rejects.toMatchObject({ name: 'TeacherError' })
  })

  it('a good answer is still taught and cached', async () => {
    const url = await replying(generated({ response: '  asthma is inflammation  ', eval_count: 3 }))
    const { dir, store } = await cachedStore()
    const teacher = await CachedTeacher.open(new OllamaTeacher({ model: 'm', url }), store, join(dir, 'index.json'))
    const { report, examples } = await distil(cards, [{ q: 'a' }], teacher, { maxTokens: 8 })
    expect(report).toMatchObject({ asked: 1, failed: 0, tokens: 3 })
    expect(examples[0]?.a).toBe('asthma is inflammation')
  })
})

describe('an Ollama teacher asks only the server it is given', () => {
  // Found red-teaming: fetch followed a 307 and re-POSTed the question to whatever the Location named (a local kubo RPC, say).
  for (const status of [301, 302, 307, 308]) {
    it(`a ${status} redirect is refused as a TeacherError naming the server; nothing reaches the Location`, async () => {
      const reached: string[] = []
      const elsewhere = await ollama(res => { reached.push('elsewhere'); res.setHeader('content-type', 'application/json'); res.end(generated({})) })
      const url = await ollama(res => { res.writeHead(status, { location: `${elsewhere}/api/v0/shutdown` }); res.end() })
      await expect(new OllamaTeacher({ model: 'm', url }).ask('q')).rejects.toMatchObject({ name: 'TeacherError', message: expect.stringContaining(url) })
      expect(reached).toEqual([])
    })
  }

  it('takes a reply naming the model asked as Ollama may spell it: with :latest, without a source suffix, in another case', async () => {
    const answered = async (asked: string, said: string): Promise<string> => (await new OllamaTeacher({ model: asked, url: await replying(generated({ model: said })) }).ask('q')).text
    expect(await answered('m', 'm:latest')).toBe('an answer')
    expect(await answered('gemma3:270m', 'gemma3:270m')).toBe('an answer')
    expect(await answered('gpt-oss:20b-cloud', 'gpt-oss:20b')).toBe('an answer')
    expect(await answered('gpt-oss:20b:cloud', 'gpt-oss:20b')).toBe('an answer')
    expect(await answered('Meditron', 'meditron:latest')).toBe('an answer')
    await expect(answered('gemma3:270m', 'gemma3:270m-it')).rejects.toMatchObject({ name: 'TeacherError' })
    await expect(answered('gemma3', 'gemma3:270m')).rejects.toMatchObject({ name: 'TeacherError' })
  })
})

describe('an Ollama teacher that is down or lacks the model', () => {
  it('answers 5xx: BackendUnavailableError; a missing model: ModelNotFoundError; a 400 on one question: TeacherError', async () => {
    const status = (code: number, error: string): Promise<string> => ollama(res => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify({ error })) })
    await expect(new OllamaTeacher({ model: 'm', url: await status(503, 'server busy') }).ask('q')).rejects.toMatchObject({ name: 'BackendUnavailableError' })
    await expect(new OllamaTeacher({ model: 'm', url: await status(500, 'llama runner process has terminated') }).ask('q')).rejects.toMatchObject({ name: 'BackendUnavailableError' })
    await expect(new OllamaTeacher({ model: 'm', url: await status(404, "model 'm' not found") }).ask('q')).rejects.toMatchObject({ name: 'ModelNotFoundError', message: expect.stringContaining('ollama pull m') })
    await expect(new OllamaTeacher({ model: 'm', url: await status(400, 'prompt too long') }).ask('q')).rejects.toMatchObject({ name: 'TeacherError' })
  })

  it('distil stops at an outage and notes no question as unanswerable: the next distil asks them all again', async () => {
    const failed = new Set<string>()
    const teacher = new OllamaTeacher({ model: 'm', url: 'http://127.0.0.1:9' })
    await expect(distil(cards, [{ q: 'a' }, { q: 'b' }, { q: 'c' }], teacher, { maxTokens: 8, failed })).rejects.toMatchObject({ name: 'BackendUnavailableError' })
    expect([...failed]).toEqual([])
  })

  it('an agent whose teacher is down goes on without distilling this time, with a warning, and distils once it is back', async () => {
    let down = true
    const url = await ollama(res => {
      if (down) { res.writeHead(503); res.end(); return }
      res.setHeader('content-type', 'application/json')
      res.end(generated({ response: 'an answer', eval_count: 2 }))
    })
    const { dir, store } = await cachedStore()
    const cache = await CachedTeacher.open(new OllamaTeacher({ model: 'm', url }), store, join(dir, 'index.json'))
    const warnings: string[] = []
    const ctx = {
      name: 'agent-1',
      task: { name: 'qa', teaching: cards },
      teacher: { cache, maxTokens: 8 },
      held: { shard: { val: [{ q: 'v1' }], train: [{ q: 't1' }, { q: 't2' }] }, unanswerable: new Set<string>(), scores: new Map() },
      timer: { time: async <T>(_phase: string, work: () => Promise<T> | T) => work() },
      logger: { info () {}, warn (message: string) { warnings.push(message) } },
      autoVote: true
    }
    await autoDistil(ctx as never)
    expect(warnings).toEqual([expect.stringContaining('teacher')])
    expect(ctx.held.unanswerable.size).toBe(0)
    expect(undistilled(ctx as never)).toBe(3)
    down = false
    await autoDistil(ctx as never)
    expect(undistilled(ctx as never)).toBe(0)
    expect([...ctx.held.shard.val, ...ctx.held.shard.train].map(c => (c as Card).a)).toEqual(['an answer', 'an answer', 'an answer'])
  })
})

describe('an Ollama teacher’s time and reply size are bounded', () => {
  /** Sends the headers and a first byte of the reply, then nothing more. */
  const stalling = async (): Promise<string> => ollama(res => { res.writeHead(200, { 'content-type': 'application/json' }); res.write('{') })

  it('an abort stops a reply that never ends, at once', async () => {
    const url = await stalling()
    // It hung for good before (the test's own timeout ends it).
    await expect(new OllamaTeacher({ model: 'm', url }).ask('q', { signal: AbortSignal.timeout(300) })).rejects.toMatchObject({ name: expect.stringMatching(/^(AbortError|TimeoutError)$/) })
  }, 10_000)

  it('a reply that takes longer than the teacher’s timeout is an outage (BackendUnavailableError), and the question is not noted as unanswerable', async () => {
    const url = await stalling()
    await expect(new OllamaTeacher({ model: 'm', url, timeoutMs: 300 }).ask('q')).rejects.toMatchObject({ name: 'BackendUnavailableError', message: expect.stringContaining('0.3 s') })
    const failed = new Set<string>()
    await expect(distil(cards, [{ q: 'a' }], new OllamaTeacher({ model: 'm', url, timeoutMs: 300 }), { maxTokens: 8, failed })).rejects.toMatchObject({ name: 'BackendUnavailableError' })
    expect(failed.size).toBe(0)
  }, 10_000)

  it('a reply larger than any answer can be is cut off while it streams in: the question’s TeacherError', async () => {
    const chunk = 'x'.repeat(1 << 20)
    let sent = 0
    const url = await ollama(res => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"done":true,"response":"')
      const more = (): void => {
        // 256 MiB in all, unless the client stops reading first.
        while (sent < 256 && !res.destroyed) { sent++; if (!res.write(chunk)) { res.once('drain', more); return } }
        if (!res.destroyed) res.end('"}')
      }
      more()
    })
    await expect(new OllamaTeacher({ model: 'm', url }).ask('q')).rejects.toMatchObject({ name: 'TeacherError', cause: { name: 'PayloadTooLargeError' } })
    expect(sent).toBeLessThan(64)
  }, 30_000)
})

describe('the answer cache index is read as a file Conclave wrote, or refused by name', () => {
  const lenient = { name: 't', ask: async (question: string) => ({ teacher: 't', question, text: 'hi', tokens: 1 }) }

  it('an index that is not JSON is a DamagedFileError naming it', async () => {
    const { dir, store } = await cachedStore()
    const index = join(dir, 'index.json')
    await writeFile(index, '{oops')
    await expect(CachedTeacher.open(lenient, store, index)).rejects.toMatchObject({ name: 'DamagedFileError', message: expect.stringContaining(index) })
  })

  it('a FIFO, a link or an oversized file in its place is refused at once, not read', async () => {
    const { dir, store } = await cachedStore()
    const fifo = join(dir, 'fifo.json')
    execFileSync('mkfifo', [fifo])
    await expect(CachedTeacher.open(lenient, store, fifo)).rejects.toMatchObject({ name: 'DamagedFileError', message: expect.stringContaining(fifo) })
    const real = join(dir, 'real.json')
    await writeFile(real, JSON.stringify({ version: 1, answers: {} }))
    await symlink(real, join(dir, 'link.json'))
    await expect(CachedTeacher.open(lenient, store, join(dir, 'link.json'))).rejects.toMatchObject({ name: 'DamagedFileError', message: expect.stringContaining('link.json') })
    const big = join(dir, 'big.json')
    await writeFile(big, JSON.stringify({ version: 1, answers: {} }) + ' '.repeat(MAX_INDEX_BYTES))
    await expect(CachedTeacher.open(lenient, store, big)).rejects.toMatchObject({ name: 'DamagedFileError', message: expect.stringContaining(big) })
  }, 10_000)
})

describe('what an Ollama answer costs is not only what the server says', () => {
  it('an answer longer than its token cap is cut to it, and costs at least its words: eval_count 0 pays for nothing no more', async () => {
    const url = await replying(generated({ response: 'w '.repeat(5000), eval_count: 0 }))
    const { dir, store } = await cachedStore()
    const teacher = await CachedTeacher.open(new OllamaTeacher({ model: 'm', url }), store, join(dir, 'index.json'), { budgetTokens: 8 })
    const answer = await teacher.ask('a', { maxTokens: 8 })
    expect(answer.text).toBe('w w w w w w w w')
    expect(answer.tokens).toBe(8)
    expect(teacher.spent).toBe(8)
    await expect(teacher.ask('b', { maxTokens: 8 })).rejects.toMatchObject({ name: 'BudgetExceededError' })
  })

  it('costs the larger of eval_count and its words, never more than the cap', async () => {
    const ask = async (fields: object): Promise<number> => (await new OllamaTeacher({ model: 'm', url: await replying(generated(fields)) }).ask('q', { maxTokens: 8 })).tokens
    expect(await ask({ response: 'a b c d e', eval_count: 3 })).toBe(5)
    expect(await ask({ response: 'a b', eval_count: 7 })).toBe(7)
    expect(await ask({ response: 'a b', eval_count: undefined })).toBe(2)
    expect(await ask({ response: 'a b', eval_count: 1_000_000 })).toBe(8)
  })
})
