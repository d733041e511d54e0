import { Ollama } from 'ollama'
import { z } from 'zod'
import { BackendUnavailableError, ModelNotFoundError, TeacherError } from '../core/errors.ts'
import { countWords, TeacherAnswer, type AskOptions, type Teacher } from './index.ts'

/** What this teacher reads of Ollama's /api/generate reply (it sends more, left alone). */
const GenerateReply = z.object({
  response: z.string(),
  eval_count: z.number().int().nonnegative().optional()
})

export interface OllamaTeacherOptions {
  /** Any model the server has: the paper used LLaMA and BioGPT; BioGPT is not in Ollama's library, a biomedical substitute is meditron. */
  model: string
  /** @default http://127.0.0.1:11434 */
  url?: string
  /** Prepended to every question. */
  system?: string
  seed?: number
}

/**
 * A teacher served by Ollama (the `ollama` client), at temperature 0 with a seed. That is
 * nearly but not exactly deterministic: asked twice in a row, Ollama reuses its KV cache and
 * the rounding can tip greedy decoding onto another answer. What makes an answer stable is
 * the content-addressed cache (`CachedTeacher`): a question is asked once, then read back.
 */
export class OllamaTeacher implements Teacher {
  readonly name: string
  readonly #client: Ollama
  readonly #options: OllamaTeacherOptions

  constructor (options: OllamaTeacherOptions) {
    this.name = `ollama:${options.model}`
    this.#options = options
    this.#client = new Ollama({ host: options.url ?? 'http://127.0.0.1:11434' })
  }

  async ask (question: string, options: AskOptions = {}): Promise<TeacherAnswer> {
    options.signal?.throwIfAborted()
    const maxTokens = options.maxTokens ?? 256
    let response: Awaited<ReturnType<Ollama['generate']>>
    try {
      response = await this.#client.generate({
        model: this.#options.model,
        prompt: question,
        system: this.#options.system ?? 'You are a medical expert. Answer the question accurately and concisely.',
        stream: false,
        options: { temperature: 0, seed: this.#options.seed ?? 0, num_predict: maxTokens }
      })
    } catch (err) {
      throw await this.#failure(err, options.signal)
    }
    // A server is no authority on its answer's shape: a reply that is not one is this question's failure.
    const reply = GenerateReply.safeParse(response)
    if (!reply.success) throw new TeacherError(`${this.name} gave no usable answer: ${reply.error.issues[0]?.message ?? 'not a generate reply'}`)
    const text = reply.data.response.trim()
    const answer = TeacherAnswer.safeParse({ teacher: this.name, question, text, tokens: reply.data.eval_count ?? countWords(text) })
    if (!answer.success) throw new TeacherError(`${this.name} gave no usable answer: ${answer.error.issues[0]?.path.join('.')} ${answer.error.issues[0]?.message}`)
    return answer.data
  }

  /**
   * Why the server gave no answer. A server that cannot be reached or fails itself (5xx), and a
   * model it does not have, are the teacher's outage or the run's configuration: thrown as
   * BackendUnavailableError / ModelNotFoundError, so distillation stops and asks again later. Only
   * what the server refuses for this question (another 4xx, a reply that is no JSON) is a
   * TeacherError: the question is noted as one it cannot answer.
   */
  async #failure (err: unknown, signal: AbortSignal | undefined): Promise<Error> {
    if (signal?.aborted === true) return signal.reason instanceof Error ? signal.reason : new DOMException('aborted', 'AbortError')
    const url = this.#options.url ?? 'http://127.0.0.1:11434'
    const { explainOllamaError } = await import('../llm/ollama.ts')
    const explained = explainOllamaError(err, this.#options.model, url)
    if (explained instanceof BackendUnavailableError || explained instanceof ModelNotFoundError) return explained
    const status = (err as { status_code?: unknown }).status_code
    if (typeof status === 'number' && (status >= 500 || status === 408 || status === 429)) {
      return new BackendUnavailableError(`Ollama at ${url} answered HTTP ${status} (${explained.message}): try again later`, { cause: err })
    }
    return new TeacherError(`${this.name} could not answer: ${explained.message}`, { cause: explained })
  }
}
