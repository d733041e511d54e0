import { z } from 'zod'
import { ServiceUrl } from '../core/secret.ts'

/** One teacher answer, as stored and reused: what was asked, of whom, and what it cost. */
export const TeacherAnswer = z.object({
  teacher: z.string().min(1).max(200),
  question: z.string().min(1).max(4000),
  /** Never empty: an empty target would be cached and taught as the answer. */
  text: z.string().min(1).max(100_000),
  /** Tokens the answer cost (the teacher's count when it gives one, else words). */
  tokens: z.number().int().nonnegative(),
  /**
   * Per generated token, the teacher's top candidates with log-probabilities, the generated
   * one first (so the first candidates, joined, spell the answer), when the teacher exposes
   * them (gguf); absent otherwise. Students take them as soft targets (a KL term).
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

const Budget = {
  /** Most tokens each agent may pay its teacher for (cached answers are free). @default no cap */
  budgetTokens: z.number().int().nonnegative().optional(),
  /** Most tokens one answer may cost. @default 64 */
  maxTokens: z.number().int().min(1).max(4096).default(64)
}

/** Who answers a generative task's questions: the dataset's own answers (embedded default), a model served by Ollama, or a GGUF file run in-process. */
export const TeacherConfig = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('dataset'), ...Budget }).strict(),
  z.object({
    kind: z.literal('ollama'),
    /** e.g. llama3.1:8b, meditron:7b (BioGPT is not in Ollama's library), or conclave-gemma3 from scripts/services/ollama.sh. */
    model: z.string().min(1).max(200),
    url: ServiceUrl.default('http://127.0.0.1:11434'),
    /** Longest one answer may take, loading the model included; a slower server counts as down for the round. @default 300 */
    timeoutSeconds: z.number().int().min(1).max(86_400).default(300),
    ...Budget
  }).strict(),
  z.object({
    kind: z.literal('gguf'),
    /** A GGUF file run in-process (`npm run models:gemma` prints Gemma 3 270M's); it also gives its token distributions. */
    path: z.string().min(1),
    /** Candidates kept per generated token. @default 8 */
    topK: z.number().int().min(1).max(64).default(8),
    ...Budget
  }).strict()
])
export type TeacherConfig = z.infer<typeof TeacherConfig>

/** The configured teacher; `pairs` are what the dataset teacher knows. */
export async function createTeacher (config: TeacherConfig, pairs: Iterable<{ question: string, answer: string }>): Promise<Teacher> {
  switch (config.kind) {
    case 'dataset': return new (await import('./dataset.ts')).DatasetTeacher(pairs)
    case 'ollama': return new (await import('./ollama.ts')).OllamaTeacher({ model: config.model, url: config.url, timeoutMs: config.timeoutSeconds * 1000 })
    case 'gguf': return new (await import('./gguf.ts')).GgufTeacher({ path: config.path, topK: config.topK })
  }
}
