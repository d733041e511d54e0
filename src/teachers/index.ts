import { z } from 'zod'

/** One teacher answer, as stored and reused: what was asked, of whom, and what it cost. */
export const TeacherAnswer = z.object({
  teacher: z.string().min(1).max(200),
  question: z.string().min(1).max(4000),
  text: z.string().max(100_000),
  /** Tokens the answer cost (the teacher's count when it gives one, else words). */
  tokens: z.number().int().nonnegative(),
  /**
   * Per generated token, the teacher's top candidates with log-probabilities, when the
   * teacher exposes them (for a KL loss); absent otherwise.
   */
  topK: z.array(z.array(z.tuple([z.string(), z.number()]))).optional()
}).strict()
export type TeacherAnswer = z.infer<typeof TeacherAnswer>

export interface AskOptions {
  /** Most tokens the answer may cost. @default 256 */
  maxTokens?: number
  signal?: AbortSignal
}

/**
 * A source of knowledge to distil: a large model behind Ollama, or answers cached with a
 * dataset. Teachers are queried through `CachedTeacher`/`BudgetedTeacher` wrappers that
 * store every answer content-addressed (never paid for twice) and cap what an agent spends.
 */
export interface Teacher {
  readonly name: string
  ask(question: string, options?: AskOptions): Promise<TeacherAnswer>
}

/** Whitespace tokens, for teachers that do not count their own. */
export const countWords = (text: string): number => text.split(/\s+/).filter(Boolean).length

/** The first `max` words of a text (a teacher's answer cut to its budget). */
export function firstWords (text: string, max: number): string {
  return text.split(/\s+/).filter(Boolean).slice(0, max).join(' ')
}
