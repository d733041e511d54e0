import { createHash } from 'node:crypto'
import { z } from 'zod'
import { BudgetExceededError, DamagedFileError, TeacherError } from '../core/errors.ts'
import { readOwnFile, writeAtomic } from '../core/files.ts'
import type { ContentStore } from '../storage/index.ts'
import { TeacherAnswer, type AskOptions, type Teacher } from './index.ts'

/**
 * Most bytes the index may take: an entry is ~140 bytes, so this holds ~480 000 answers, far
 * more than an agent's questions at the few token caps a run uses.
 */
export const MAX_INDEX_BYTES = 64 << 20

const Index = z.object({ version: z.literal(1), answers: z.record(z.string().regex(/^[0-9a-f]{64}$/), z.string().min(1)) }).strict()

/**
 * Every answer a teacher gives is stored in the content store (so it is addressed by its
 * hash, verified on read, and auditable) and indexed by what was asked (teacher, question,
 * token cap); asking again reads it back instead of paying the teacher twice. An optional
 * budget caps the tokens actually paid for; cached answers cost nothing.
 */
export class CachedTeacher implements Teacher {
  readonly name: string
  readonly #teacher: Teacher
  readonly #store: ContentStore
  readonly #indexPath: string
  readonly #index: Map<string, string>
  readonly #budget: number
  spent = 0
  hits = 0
  misses = 0

  private constructor (teacher: Teacher, store: ContentStore, indexPath: string, index: Map<string, string>, budget: number) {
    this.name = teacher.name
    this.#teacher = teacher
    this.#store = store
    this.#indexPath = indexPath
    this.#index = index
    this.#budget = budget
  }

  /** `indexPath`: a JSON file mapping request hashes to answer CIDs (kept with the agent). */
  static async open (teacher: Teacher, store: ContentStore, indexPath: string, options: { budgetTokens?: number } = {}): Promise<CachedTeacher> {
    let index = new Map<string, string>()
    const text = (await readOwnFile(indexPath, { is: 'the teacher cache index this agent wrote', error: DamagedFileError, maxBytes: MAX_INDEX_BYTES }))?.toString('utf8')
    if (text !== undefined) {
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch (err) {
        throw new DamagedFileError(`teacher cache index ${indexPath} is damaged: it is not JSON (${(err as Error).message}): move it away`, { cause: err })
      }
      const parsed = Index.safeParse(json)
      if (!parsed.success) throw new DamagedFileError(`teacher cache index ${indexPath} is damaged: ${parsed.error.issues[0]?.message}`)
      index = new Map(Object.entries(parsed.data.answers))
    }
    return new CachedTeacher(teacher, store, indexPath, index, options.budgetTokens ?? Number.POSITIVE_INFINITY)
  }

  get remaining (): number { return this.#budget - this.spent }

  /** Whether this exact query is already paid for. */
  has (question: string, options: AskOptions = {}): boolean {
    return this.#index.has(this.#key(question, options))
  }

  async ask (question: string, options: AskOptions = {}): Promise<TeacherAnswer & { cid: string, cached: boolean }> {
    const key = this.#key(question, options)
    const cid = this.#index.get(key)
    if (cid !== undefined) {
      this.hits++
      const answer = usable(this.name, parseJson(new TextDecoder().decode(await this.#store.get(cid, options))), 'cached answer')
      return { ...answer, cid, cached: true }
    }
    const cap = options.maxTokens ?? 256
    if (cap > this.remaining) throw new BudgetExceededError(`asking ${this.name} may cost ${cap} tokens; ${Math.max(0, this.remaining)} of the budget are left`)
    const answer = usable(this.name, await this.#teacher.ask(question, options), 'answer')
    this.misses++
    this.spent += answer.tokens
    const stored = await this.#store.put(new TextEncoder().encode(JSON.stringify(answer)), options)
    this.#index.set(key, stored)
    await this.#save()
    return { ...answer, cid: stored, cached: false }
  }

  #key (question: string, options: AskOptions): string {
    return createHash('sha256').update(JSON.stringify([this.name, question, options.maxTokens ?? 256])).digest('hex')
  }

  async #save (): Promise<void> {
    await writeAtomic(this.#indexPath, JSON.stringify({ version: 1, answers: Object.fromEntries(this.#index) }))
  }
}

/** An answer that fails TeacherAnswer is this question's failure (a TeacherError), never a bare ZodError that stops distillation. */
function usable (teacher: string, value: unknown, what: string): TeacherAnswer {
  const answer = TeacherAnswer.safeParse(value)
  if (answer.success) return answer.data
  const issue = answer.error.issues[0]
  throw new TeacherError(`${teacher}'s ${what} is not usable: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim())
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
