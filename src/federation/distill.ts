import { BudgetExceededError, TeacherError } from '../core/errors.ts'
import type { AbortOptions } from '../core/options.ts'
import type { Teaching } from '../ml/task.ts'
import type { Teacher } from '../teachers/index.ts'

/** What one distillation did. */
export interface Distillation {
  /** Questions the teacher answered now, paid for. */
  asked: number
  /** Questions answered from the cache (paid for before). */
  cached: number
  /** Questions the teacher could not answer: skipped, and not asked again. */
  failed: number
  /** Tokens paid for now. */
  tokens: number
  /** Questions still without an answer. */
  pending: number
  /** The budget ran out before every question was answered. */
  exhausted: boolean
}

export interface DistilOptions extends AbortOptions {
  /** Ask about at most this many questions. @default all */
  limit?: number
  /** Most tokens one answer may cost. */
  maxTokens: number
  /** Questions a teacher already failed on; those it fails on now are added. */
  failed?: Set<string>
}

/**
 * Gives each example without a target its teacher's answer, in order, until `limit`
 * questions were asked or the budget is spent. Returns the examples (answered ones
 * replaced, the rest as they were) and what it cost. Only a TeacherError notes a question as one
 * the teacher cannot answer; a teacher that is down or lacks its model (BackendUnavailableError,
 * ModelNotFoundError) stops the distillation, thrown, and every question is asked again next time
 * (those answered before it are cached: asking again costs nothing).
 */
export async function distil<E> (teaching: Teaching<E>, examples: readonly E[], teacher: Teacher, options: DistilOptions): Promise<{ examples: E[], report: Distillation }> {
  const failed = options.failed ?? new Set<string>()
  const out = [...examples]
  const report: Distillation = { asked: 0, cached: 0, failed: 0, tokens: 0, pending: 0, exhausted: false }
  let budget = options.limit ?? Number.POSITIVE_INFINITY
  for (const [i, example] of out.entries()) {
    const question = teaching.question(example)
    if (teaching.taught(example) || failed.has(question)) continue
    if (budget <= 0 || report.exhausted) { report.pending++; continue }
    options.signal?.throwIfAborted()
    budget--
    try {
      const answer = await teacher.ask(question, { maxTokens: options.maxTokens, signal: options.signal })
      out[i] = teaching.learn(example, answer.text, answer.topK)
      if ((answer as { cached?: boolean }).cached === true) report.cached++
      else { report.asked++; report.tokens += answer.tokens }
    } catch (err) {
      if (err instanceof BudgetExceededError) { report.exhausted = true; report.pending++; continue }
      if (!(err instanceof TeacherError)) throw err
      failed.add(question)
      report.failed++
    }
  }
  return { examples: out, report }
}
